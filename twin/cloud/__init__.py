"""The cloud twin: a local Tencent Cloud API 3.0 (TKE 2018-05-25, CVM and VPC 2017-03-12).

The SDK, CommonClient and tccli reach it over HTTP on 127.0.0.1 (wire.py); each service keeps its
backend (state and rules) apart from its responses (parsing and wire shapes), as moto does.
Started by the umbrella twin (twin/server.py).
"""
