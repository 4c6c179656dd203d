"""One Prefect flow per TKE procedure; each ends with validation tasks and returns a report."""
