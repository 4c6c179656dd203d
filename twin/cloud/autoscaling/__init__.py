"""The cloud twin's Auto Scaling (`as`, 2018-04-19) service: the scaling (alarm) policies of AS groups."""
