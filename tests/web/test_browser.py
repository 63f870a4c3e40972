"""The web HMI in a real browser: Playwright driving Debian's chromium against a real vplc run.

Every wait is on a DOM condition (Playwright's expect), never a sleep. Screenshots of each
page go to reports/web/ (gitignored).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._apt import apt_install
from tests.web.conftest import PASSWORDS, ROOT, Run, start_run, stop_run

pytestmark = pytest.mark.slow
SHOTS = ROOT / "reports" / "web"
TIMEOUT_MS = 20_000


def chromium_path() -> str:
    """Debian's chromium, installed with apt when missing; fail (not skip) without it."""
    found = shutil.which("chromium")
    if found is None:
        output = apt_install("chromium")
        found = shutil.which("chromium")
        if found is None:
            pytest.fail(f"the browser tests need chromium; apt could not install it:\n{output}")
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    path = chromium_path()
    expect.set_options(timeout=TIMEOUT_MS)  # a loaded 2-core machine: DOM waits, generous
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    r = start_run(tmp_path_factory.mktemp("webui"), extra={"login_failures": 10})
    yield r
    stop_run(r)


def open_page(browser: object, run: Run, user: str):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(run.url + "/")
    page.get_by_label("User", exact=True).fill(user)
    page.get_by_label("Password", exact=True).fill(PASSWORDS[user])
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#who")).to_contain_text(user)
    return page


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_operator_flow(browser: object, run: Run) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, run, "olga")
    # live values change without a reload
    cell = page.locator('#page [data-pt="0"]').first
    expect(cell).to_contain_text("degC")
    first = cell.text_content()
    expect(cell).not_to_have_text(first or "", timeout=TIMEOUT_MS)
    expect(page.locator("#rt-state")).to_have_text("RUN")
    expect(page.locator("#loops")).to_contain_text("AUTO")
    shot(page, "overview")

    # a parameter write with a reason; an out-of-range one refused with its limits
    page.get_by_role("link", name="Parameters").click()
    page.get_by_label("new value of temp_sp").fill("37.5")
    page.get_by_label("reason for temp_sp").fill("<img src=x onerror=alert(1)>new strain")
    page.get_by_role("button", name="write temp_sp").click()
    expect(page.locator('[data-param="temp_sp"]')).to_have_text("37.50 degC")
    page.get_by_label("new value of temp_sp").fill("45")
    page.get_by_role("button", name="write temp_sp").click()
    expect(page.locator("#toast")).to_contain_text("limits 30")
    shot(page, "parameters")

    # the batch: HOLD then RESTART, each confirmed
    page.get_by_role("link", name="Batch").click()
    state = page.locator('[data-phase="batch.phase"]')
    expect(state).to_have_text("RUNNING")
    page.get_by_role("button", name="HOLD batch.phase").click()
    page.get_by_label("Reason").fill("sampling")
    page.get_by_role("button", name="Confirm").click()
    expect(state).to_have_text("HELD")
    shot(page, "batch")
    page.get_by_role("button", name="RESTART batch.phase").click()
    page.get_by_role("button", name="Confirm").click()
    expect(state).to_have_text("RUNNING")

    # the audit page shows the injected reason as text, and the verifier's verdict
    page.get_by_role("link", name="Audit").click()
    expect(page.locator("#page table")).to_contain_text("<img src=x onerror=alert(1)>new strain")
    expect(page.locator("img")).to_have_count(0)
    expect(page.locator("#audit-verdict")).to_contain_text("OK")
    shot(page, "audit")
    page.get_by_role("link", name="Trends").click()
    expect(page.locator("canvas")).to_be_visible()
    expect(page.locator("#page .toolbar").nth(1)).to_contain_text("TT101")
    shot(page, "trends")
    page.context.close()


def test_engineer_forces_an_alarm_and_operator_acknowledges(browser: object, run: Run) -> None:
    from playwright.sync_api import expect

    eng = open_page(browser, run, "erik")
    eng.get_by_role("link", name="Engineering").click()
    eng.locator("#force-point").select_option("LT401")
    eng.locator("#force-value").fill("97")
    eng.locator("#force-btn").click()
    eng.get_by_label("Reason").fill("alarm test")
    eng.get_by_role("button", name="Confirm").click()
    # Forcing is critical in the bioreactor: the dialog shows what is signed, two signers.
    dialog = eng.get_by_role("dialog", name="Electronic signature: Force LT401")
    expect(dialog).to_be_visible()
    content = eng.get_by_label("content to be signed")
    expect(content).to_contain_text('"point": "LT401"')
    expect(content).to_contain_text('"value": 97')
    expect(content).to_contain_text('"reason": "alarm test"')
    expect(dialog).to_contain_text("forcing an I/O point: 2 signatures by different people")
    expect(eng.get_by_label("Signer 1 user id")).to_have_value("erik")
    expect(eng.get_by_label("Signer 1 user id")).not_to_be_editable()
    expect(dialog).to_contain_text("Signer 2: approved")
    eng.get_by_label("Signer 1 password").fill(PASSWORDS["erik"])
    eng.get_by_label("Signer 2 user id").fill("quinn")
    eng.get_by_label("Signer 2 password").fill("a wrong one")
    shot(eng, "signing")
    eng.get_by_label("Signer 2 password").press("Enter")  # keyboard: Enter submits the form
    expect(eng.locator("#toast")).to_contain_text("signature of 'quinn' refused")
    expect(eng.locator("#sign-rows input")).to_have_count(0)  # no password left in the page
    # Again, signed properly: the second person types their own id and password here.
    eng.locator("#force-btn").click()
    eng.get_by_label("Reason").fill("alarm test")
    eng.get_by_role("button", name="Confirm").click()
    eng.get_by_label("Signer 1 password").fill(PASSWORDS["erik"])
    eng.get_by_label("Signer 2 user id").fill("quinn")
    eng.get_by_label("Signer 2 password").fill(PASSWORDS["quinn"])
    eng.get_by_role("button", name="Sign and send").click()
    expect(eng.locator("#toast")).to_contain_text("Force LT401: done (signed)")
    banner = eng.locator("#banner-forced")
    expect(banner).to_contain_text("FORCED: LT401")
    expect(eng.locator("#page table").first).to_contain_text("control")
    eng.get_by_label("watch loops.tic101").check()
    expect(eng.locator("#page")).to_contain_text("SP_W")
    shot(eng, "engineering")

    op = open_page(browser, run, "olga")
    expect(op.locator("#banner-forced")).to_contain_text("LT401")  # on every page
    op.get_by_role("link", name=re.compile("Alarms")).click()
    row = op.locator('[data-alarm="alarms.level"]')
    expect(row).to_contain_text("unacknowledged", timeout=30_000)
    shot(op, "alarms")

    eng.locator("#unforce-btn").click()
    eng.get_by_role("button", name="Confirm").click()
    expect(banner).to_be_hidden()

    op.get_by_label("comment for alarms.level").fill("<b>checked</b> level probe")
    op.get_by_role("button", name="acknowledge alarms.level").click()
    op.get_by_label("show inactive alarms too").check()  # the row stays once it clears
    expect(row).not_to_contain_text("unacknowledged", timeout=30_000)
    expect(row.get_by_role("button", name="acknowledge alarms.level")).to_be_disabled()
    eng.context.close()
    op.context.close()


def test_viewer_is_refused_in_words(browser: object, run: Run) -> None:
    from playwright.sync_api import expect

    page = open_page(browser, run, "vic")
    expect(page.locator("#who")).to_contain_text("read only")
    page.get_by_role("link", name="Parameters").click()
    page.get_by_label("new value of do_sp").fill("50")
    page.get_by_role("button", name="write do_sp").click()
    expect(page.locator("#page .error").filter(has_text="needs role")).to_have_count(1)
    expect(page.locator('[data-param="do_sp"]')).to_have_text("40.00 %")
    page.get_by_role("button", name="Log out").click()
    expect(page.locator("#login")).to_be_visible()
    page.context.close()


def test_dead_runtime_shows_a_banner(browser: object, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    r = start_run(tmp_path / "dying")
    try:
        page = open_page(browser, r, "olga")
        expect(page.locator("#rt-state")).to_have_text("RUN")
    finally:
        stop_run(r)
    expect(page.locator("#banner-conn")).to_contain_text("No connection")
    expect(page.locator("#rt-state")).to_have_text("UNREACHABLE")
    shot(page, "unreachable")
    page.context.close()
