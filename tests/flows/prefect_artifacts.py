"""Reading artifacts back from the test's Prefect server, as a person would see them in the UI."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.client.schemas.sorting import ArtifactSort


def latest_artifact(key: str) -> str:
    """The data of the newest artifact with this key (markdown text, or the table as JSON text)."""
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])), sort=ArtifactSort.CREATED_DESC, limit=1
        )
    assert found, f"no artifact with key {key!r}"
    data = found[0].data
    return data if isinstance(data, str) else str(data)
