"""CVM service of the cloud twin (backend state logic, responses, rendering)."""
