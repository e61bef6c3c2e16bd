"""The injector: a Kubernetes mutating admission webhook that adds the sidecar to pods."""
