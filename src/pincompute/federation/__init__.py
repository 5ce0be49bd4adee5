"""Host-side control plane: projects, admission, cluster scheduling, propagation, status."""
