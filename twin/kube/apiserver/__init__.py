"""The cluster twin's Kubernetes API server: HTTPS, discovery, REST handlers and watch.

``server.ApiServer`` serves a Store (twin/kube/store.py) the way kube-apiserver serves etcd;
the registry of the kinds it knows is twin/kube/resources.py (shared with the store and the
controllers, which do not import this package). The KubeCluster facade (cluster.py) starts it.
"""
