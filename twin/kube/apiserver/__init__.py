"""The cluster twin's Kubernetes API server: HTTPS, discovery, REST handlers and watch.

``server.ApiServer`` serves a Store (twin/kube/store.py) the way kube-apiserver serves etcd;
``resources`` is the registry of the kinds it knows. The KubeCluster facade (cluster.py) starts it.
"""
