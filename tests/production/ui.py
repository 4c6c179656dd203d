"""The Prefect UI in headless Chromium, driven by Playwright for Python as a person would use it.

Who uses it: tests/production/test_browser.py. The browser is Debian's chromium (scripts/setup.sh
--browser installs it); Playwright only drives it (`executable_path`), its own browser download is
never used. Every step can leave a screenshot in the test's folder (`Screen.shot`). Locators follow
what the UI shows (labels, buttons, roles), not its internal ids, so a person could follow the same
steps.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("TKEFLOW_CHROMIUM", "/usr/bin/chromium")
STEP_TIMEOUT_MS = 60_000  # a loaded 2-core CI machine renders the UI's first page in seconds, not ms
# The one form property whose label is exactly `label` (nested properties are properties too).
PROPERTY = "xpath=ancestor::div[contains(concat(' ', normalize-space(@class), ' '), ' schema-form-property ')][1]"


def plain(text: str) -> str:
    """Text as the UI renders it from markdown and wraps it: no emphasis or code marks, single spaces."""
    return " ".join(re.sub(r"[`*_]", "", text).split())


@dataclass
class Screen:
    """One browser page on the Prefect UI at ``base_url``; screenshots numbered in ``shots``."""

    page: Any
    base_url: str
    shots: Path
    taken: int = 0

    def goto(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def shot(self, name: str, full_page: bool = False) -> Path:
        self.taken += 1
        path = self.shots / f"{self.taken:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")  # toggles at rest
        return path

    def shot_form(self, name: str) -> Path:
        """The whole run form in one picture: it scrolls inside the page, so the window grows to fit it."""
        height = self.page.evaluate("document.querySelector('form').scrollHeight")
        size = self.page.viewport_size
        self.page.set_viewport_size({"width": size["width"], "height": min(height + 300, 16_000)})
        try:
            return self.shot(name)
        finally:
            self.page.set_viewport_size(size)

    def open_run_form(self, deployment_id: object) -> None:
        """The deployment's "Run > Custom run" page: the form the UI builds from the parameter schema."""
        self.goto(f"/deployments/deployment/{deployment_id}/run")
        self.page.get_by_text("Parameters", exact=True).wait_for()

    def form_text(self) -> str:
        return plain(self.page.locator("form").first.inner_text())

    def missing_fields(self, fields: list[tuple[str, str]]) -> list[str]:
        """The (title, description) pairs of ``fields`` that the form does not show."""
        text = self.form_text()
        return [title for title, description in fields
                if plain(title).lower() not in text.lower() or plain(description) not in text]

    def switch(self, label: str, scope: Any = None) -> Any:
        """The toggle of the form property labelled ``label`` (optional properties say "(Optional)")."""
        scope = scope or self.page
        title = scope.locator(".schema-form-property__label", has_text=re.compile(rf"^{label}( \(Optional\))?$"))
        return title.locator(PROPERTY).locator("[role=switch]")

    def set_switch(self, label: str, on: bool, scope: Any = None) -> None:
        toggle = self.switch(label, scope)
        from playwright.sync_api import expect

        if (toggle.get_attribute("aria-checked") == "true") != on:
            toggle.click()
        expect(toggle).to_have_attribute("aria-checked", "true" if on else "false")  # retried until re-rendered

    def submit_run_form(self) -> None:
        """Submit the run form; the UI goes back to the deployment's runs (and toasts the new run)."""
        self.page.locator("form button[type=submit]").click()
        self.page.wait_for_url(re.compile(r"/deployments/deployment/[0-9a-f-]{36}(\?tab=Runs)?$"))
        self.page.get_by_text("scheduled to start").first.wait_for()  # the toast naming the new run
        self.page.get_by_text("Deployment ID", exact=True).wait_for()  # the page under it, rendered

    def open_run(self, flow_run_id: object) -> None:
        self.goto(f"/runs/flow-run/{flow_run_id}")
        self.page.get_by_text("Logs", exact=True).first.wait_for()

    def open_resume_form(self) -> Any:
        """Press the paused run's Resume button; the dialog with the pause form (description and fields)."""
        self.page.get_by_role("button", name=re.compile(r"^\s*Resume")).first.click()
        dialog = self.page.get_by_role("dialog")
        dialog.wait_for()
        return dialog

    def approve(self, dialog: Any, reason: str) -> None:
        """Tick approve, say why, submit (the UI sends the resume with this input; the caller waits for the run)."""
        self.set_switch("Approve", True, scope=dialog)
        dialog.get_by_role("textbox").first.fill(reason)
        self.shot("upgrade-pause-form-approved")
        dialog.get_by_role("button", name="Submit").click()

    def open_validation_table(self) -> list[dict[str, str]]:
        """From the open run: Artifacts tab, the validation table's card ("N of M checks passed"); its rows."""
        self.page.get_by_text("Artifacts", exact=True).first.click()
        description = self.page.locator(".artifact-card__description", has_text=re.compile(r"\d+ of \d+ checks passed"))
        self.page.locator("a", has=description).first.click()
        self.page.wait_for_url(re.compile(r"/artifacts/artifact/"))
        self.page.locator("table td").first.wait_for()
        headers = [plain(h) for h in self.page.locator("table th").all_inner_texts()]
        return [dict(zip(headers, (plain(c) for c in row.locator("td").all_inner_texts()), strict=False))
                for row in self.page.locator("table tbody tr").all()]


@contextlib.contextmanager
def browser(base_url: str, shots: Path) -> Iterator[Screen]:
    """Headless Debian chromium through Playwright; a page on the UI at ``base_url``."""
    try:
        from playwright.sync_api import sync_playwright
    except ModuleNotFoundError:
        raise RuntimeError("Playwright is not installed: run `bash scripts/setup.sh --test --browser`") from None
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"no browser at {CHROMIUM}: run `bash scripts/setup.sh --test --browser` (Debian's chromium)")
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            yield Screen(page, base_url, shots)
        finally:
            chromium.close()
