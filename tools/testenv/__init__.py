"""Real servers and binaries for the tests (helm, kubectl, kube-apiserver, etcd), kept outside the repo."""
