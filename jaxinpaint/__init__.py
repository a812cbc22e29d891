"""jaxinpaint: remove what covers a face and reconstruct the face underneath (JAX/Flax)."""
