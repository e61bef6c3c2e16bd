"""Amazon Web Services: the pod's credentials (botocore's chain) and SigV4 signing of forwarded
requests. botocore is imported only when an upstream needs it (the `aws` extra)."""
