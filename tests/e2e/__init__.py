"""kind end-to-end tier (`make e2e-kind`); the parts that need no cluster run in `make test`."""
