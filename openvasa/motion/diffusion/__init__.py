"""VASA-1's holistic facial dynamics generator: a diffusion transformer over motion windows."""
