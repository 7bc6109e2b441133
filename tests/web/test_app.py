"""The app, live: the /ask API, a real headless browser, hostile sources, and load.

Chromium is Debian's (/usr/bin/chromium) driven by Playwright; `playwright install` is never run.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, SEEDS, write_corpus

pytestmark = pytest.mark.model
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists() and not os.environ.get("CI"), reason="Debian chromium is not installed (scripts/test.sh installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class App:
    """`python app.py` in a subprocess, up until the test module ends."""

    def __init__(self, sources: Path, index: Path, port: int, use_env: bool = False) -> None:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        args = [sys.executable, str(ROOT / "app.py"), "--sources", str(sources), "--index", str(index)]
        if use_env:
            env["GRADIO_SERVER_PORT"] = str(port)
        else:
            args += ["--port", str(port)]
        self.url = f"http://127.0.0.1:{port}/"
        self.log: list[str] = []
        started = time.perf_counter()
        self.proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
        ready = threading.Event()

        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.log.append(line)
                if line.startswith("ready in "):
                    ready.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.time() + 600
        while not ready.wait(1):
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("app did not start:\n" + "".join(self.log))
        self.launch_seconds = time.perf_counter() - started
        self.ready_line = next(line for line in self.log if line.startswith("ready in "))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def app(seed_index: Path) -> Iterator[App]:
    running = App(SEEDS, seed_index, free_port(), use_env=True)
    yield running
    running.stop()


def check_citations(answer: dict, sources: Path = SEEDS) -> None:
    for hit in answer["hits"]:
        text = (sources / hit["source"]).read_bytes().decode("utf-8")
        assert text[hit["start"] : hit["end"]] == hit["text"]
        assert hit["start"] <= hit["highlight"][0] < hit["highlight"][1] <= hit["end"]


def test_ready_line_reports_launch_time(app: App):
    seconds = float(app.ready_line.split()[2])
    assert seconds <= app.launch_seconds + 0.5  # the line's own figure is the launch time measured from outside
    assert "building the index" not in "".join(app.log)  # an up-to-date index is reused
    print(f"\napp launch to ready with an existing index: {seconds:.1f} s")


def test_api_ask_matches_the_cli(app: App, seed_index: Path):
    from gradio_client import Client

    question = "Which airport was closed after the attack?"
    result = Client(app.url, verbose=False).predict(question, 4, api_name="/ask")
    answer = json.loads(result) if isinstance(result, str) else result
    assert answer["question"] == question and answer["answered"] is True and len(answer["hits"]) == 4
    check_citations(answer)
    cli = subprocess.run(
        [sys.executable, "-m", "rag", "ask", question, "--index", str(seed_index), "-k", "4", "--json"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
    )
    expected = json.loads(cli.stdout)
    assert [{k: v for k, v in h.items() if k != "score"} for h in answer["hits"]] == [
        {k: v for k, v in h.items() if k != "score"} for h in expected["hits"]
    ]
    assert [h["score"] for h in answer["hits"]] == pytest.approx([h["score"] for h in expected["hits"]], abs=1e-4)
    assert answer["answered"] == expected["answered"]
    strict = Client(app.url, verbose=False).predict(question, 4, api_name="/ask_strict")
    strict = json.loads(strict) if isinstance(strict, str) else strict
    assert strict["abstain"] == "strict" and answer["abstain"] == "lenient"
    assert strict["threshold"] >= answer["threshold"] and [h["text"] for h in strict["hits"]] == [h["text"] for h in answer["hits"]]


def test_api_rejects_an_empty_question(app: App):
    from gradio_client import Client

    with pytest.raises(Exception, match="question is empty"):
        Client(app.url, verbose=False).predict("   ", 3, api_name="/ask")


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@needs_chromium
def test_browser_question_to_cited_card_and_source(app: App, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.goto(app.url)
        box = page.locator("#question textarea")
        box.fill("How many people were killed in the attack on Bamako?")
        box.press("Enter")
        card = page.locator(".rag-card").first
        expect(card).to_be_visible(timeout=60_000)
        assert card.locator(".rag-passage mark").count() == 1
        citation = card.locator(".rag-citation").inner_text()
        assert any(seed.name in citation for seed in SEEDS.iterdir()) and "characters" in citation
        label = card.locator(".rag-strength").inner_text()
        assert label in ("Strong evidence", "Supports an answer")  # the top card of an answered question
        assert card.locator(".rag-score").inner_text().startswith("support 0.")
        assert "the best card reaches" in page.locator(".rag-explain").inner_text()
        footer = page.locator("#footer").inner_text()
        assert "5 sources" in footer and "all-MiniLM-L6-v2" in footer
        page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
        # the banner counts the cards that reach the threshold; the others open from one line
        import re

        banner = page.locator(".rag-banner.answered").inner_text()
        counted = int(re.search(r"The sources answer this: (\d+) passages? from", banner).group(1))
        shown = page.locator(".rag-results > .rag-card")
        assert shown.count() == counted
        more = page.locator(".rag-more > summary")
        if more.count():
            folded = page.locator(".rag-more .rag-card")
            assert folded.count() == int(more.inner_text().split()[0]) and not folded.first.is_visible()
            more.click()
            expect(folded.first).to_be_visible()
            more.click()
        # open the whole article: the cited passage is there and scrolled into view
        card.locator(".rag-source summary").click()
        source_box = card.locator(".rag-source-text")
        expect(source_box).to_be_visible()
        passage = source_box.locator(".rag-in-passage")
        expect(passage).to_be_in_viewport()
        assert passage.inner_text().strip() == card.locator(".rag-passage").inner_text().strip()
        page.screenshot(path=str(tmp_path / "source.png"), full_page=False)
        # question words the shown passages never contain are listed
        box.fill("How many tourists visit Bamako each year?")
        box.press("Enter")
        expect(page.locator(".rag-missing")).to_contain_text("Not found in these passages: tourists", timeout=30_000)
        # an empty question is a message in the page, not an error
        box.fill("")
        page.locator("#ask").click()
        expect(page.locator(".rag-banner.message")).to_contain_text("Type a question first", timeout=30_000)
        browser.close()
    keep = os.environ.get("RAG_SCREENSHOTS")
    if keep:
        for name in ("results.png", "source.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)


HOSTILE = """Harbour fire report

<script>window.__pwned = "script";</script>
The harbour warehouse caught fire on Monday night and burned until dawn. <img src=x onerror="window.__pwned='img'"> Firefighters from three towns fought the blaze.
**Damage** was estimated at two million euros, according to the [port authority](javascript:window.__pwned='link').
<iframe src="javascript:window.__pwned='iframe'"></iframe> No one was hurt in the harbour fire.
"""


@needs_chromium
def test_hostile_source_never_executes(tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    sources = write_corpus(tmp_path / "sources", {"harbour.md": HOSTILE, "other.txt": "The town market opens on Saturdays."})
    app = App(sources, tmp_path / "index", free_port())  # builds the index first
    try:
        assert "building the index" in "".join(app.log)
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(app.url)
            page.locator("#question textarea").fill("How long did the harbour warehouse fire burn?")
            page.locator("#question textarea").press("Enter")
            expect(page.locator(".rag-card").first).to_be_visible(timeout=60_000)
            for more in page.locator(".rag-more > summary").all():  # cards that do not answer are folded
                more.click()
            for card in page.locator(".rag-card").all():
                card.locator(".rag-source summary").click()
            statement = page.locator('.rag-statement[data-source="harbour.md"]')  # the panel quotes the hostile file too
            expect(statement).to_be_visible()
            statement.locator(".rag-source summary").first.click()
            results = page.locator("#results")
            text = results.inner_text()
            assert "<img src=x onerror=" in text and "**Damage**" in text and "[port authority](javascript:" in text
            assert results.locator("img, iframe, script, a[href^='javascript']").count() == 0
            page.wait_for_timeout(500)
            assert page.evaluate("() => window.__pwned") is None
            assert not dialogs
            page.screenshot(path=str(tmp_path / "hostile.png"), full_page=True)
            browser.close()
    finally:
        app.stop()


@needs_chromium
def test_phone_page_answers_examples_at_once_and_shows_what_each_source_says(app: App, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        page.goto(app.url)
        # an over-long question gets a message; the next question replaces it at once
        box = page.locator("#question textarea")
        box.fill("x" * 1001)
        box.press("Enter")
        expect(page.locator(".rag-banner.message")).to_contain_text("under 1000 characters", timeout=30_000)
        # clicking an example asks it: no need to press Ask
        page.locator(".rag-example", has_text="How many people were killed").click()
        expect(page.locator(".rag-banner.message", has_text="under 1000")).to_have_count(0, timeout=2_000)
        expect(box).to_have_value("How many people were killed in the attack on Bamako?")
        quote = page.locator(".rag-quote")
        expect(quote).to_be_visible(timeout=60_000)
        expect(quote).to_be_in_viewport()  # the first answer is on the first screen of a phone
        assert quote.locator("cite").inner_text().count("characters") == 1
        panel = page.locator(".rag-by-source")
        expect(panel).to_contain_text("What each source says")
        expect(panel.locator(".rag-differ")).to_have_text("The sources give different figures.")
        assert panel.locator(".rag-statement").count() >= 3
        assert panel.locator("mark.rag-figure").count() >= 2
        sources = {panel.locator(".rag-statement").nth(i).get_attribute("data-source") for i in range(panel.locator(".rag-statement").count())}
        assert len(sources) >= 3
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390  # nothing wider than the phone
        page.screenshot(path=str(tmp_path / "phone.png"), full_page=False)
        page.screenshot(path=str(tmp_path / "phone-full.png"), full_page=True)
        browser.close()
    keep = os.environ.get("RAG_SCREENSHOTS")
    if keep:
        for name in ("phone.png", "phone-full.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)


def test_load_16_clients(app: App):
    from gradio_client import Client

    questions = [json.loads(line)["question"] for line in (ROOT / "eval" / "seeds" / "dev.jsonl").read_text().splitlines()]
    clients, per_client, k = 16, 50, 5
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        client = Client(app.url, verbose=False)
        for i in range(per_client):
            question = questions[(n * per_client + i) % len(questions)]
            started = time.perf_counter()
            try:
                result = client.predict(question, k, api_name="/ask")
                answer = json.loads(result) if isinstance(result, str) else result
                assert answer["question"] == question and len(answer["hits"]) == k
                check_citations(answer)
            except Exception as exc:  # collected and reported below
                with lock:
                    failures.append(f"{question}: {exc!r}")
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    assert not failures, failures[:3]
    assert len(latencies) == clients * per_client
    ms = sorted(x * 1000 for x in latencies)
    p50, p99 = statistics.median(ms), ms[int(0.99 * len(ms)) - 1]
    print(f"\nload: {clients} clients x {per_client} questions: p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
          f"throughput {len(ms) / wall:.1f} answers/s over {wall:.1f} s")


ZOO = "The Bamako zoo\n\nThe Bamako zoo keeps three giraffes, two lions and a family of chimpanzees. It opened in 1967.\n"


def test_browser_counts_only_supporting_passages_and_folds_the_rest(tmp_path: Path):
    """The seeds plus one unrelated article: the giraffe question is answered by one passage, and
    the attack passages the search also returns are folded, opened with a click."""
    import re

    from playwright.sync_api import expect, sync_playwright

    sources = tmp_path / "sources"
    shutil.copytree(SEEDS, sources)
    (sources / "zoo.txt").write_text(ZOO, "utf-8")
    app = App(sources, tmp_path / "index", free_port())
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page(viewport={"width": 390, "height": 844})
            page.goto(app.url)
            page.locator("#question textarea").fill("How many giraffes does the Bamako zoo keep?")
            page.locator("#question textarea").press("Enter")
            banner = page.locator(".rag-banner.answered")
            expect(banner).to_be_visible(timeout=60_000)
            counted = int(re.search(r"The sources answer this: (\d+) passages? from", banner.inner_text()).group(1))
            shown = page.locator(".rag-results > .rag-card")
            assert shown.count() == counted >= 1 and "zoo.txt" in shown.first.inner_text()
            more = page.locator(".rag-more > summary")
            expect(more).to_have_text(re.compile(r"\d+ more passages? that do(es)? not answer this"))
            folded = page.locator(".rag-more .rag-card")
            assert folded.count() == int(more.inner_text().split()[0]) == 5 - counted
            assert not folded.first.is_visible()
            more.click()
            expect(folded.first).to_be_visible()
            browser.close()
    finally:
        app.stop()


AXE = Path(os.environ.get("RAG_AXE", ROOT / ".cache" / "axe-core-4.14.1" / "axe.min.js"))
needs_axe = pytest.mark.skipif(not AXE.is_file(), reason="axe-core is not fetched (scripts/test.sh fetches it from npm)")
AUDIT = """async () => {
  const r = await axe.run(document, {resultTypes: ["violations"]});
  return r.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => v.id + " (" + v.impact + "): " + v.nodes.map(n => n.target.join(" ")).join(", "));
}"""


def settled(page) -> None:  # noqa: ANN001
    """Wait until Gradio has finished updating the outputs: it dims them while a request runs and
    fades the new HTML in (an opacity transition on its container), and an audit of a half-faded
    page measures the fade, not the colours."""
    from playwright.sync_api import expect

    expect(page.locator(".pending, .generating, .translucent")).to_have_count(0, timeout=30_000)
    page.wait_for_function("""() => { const r = document.querySelector(".rag-results");
        for (let e = r; e; e = e.parentElement) if (parseFloat(getComputedStyle(e).opacity) < 1) return false;
        return !!r; }""", timeout=30_000)


def tab_to(page, selector: str, limit: int = 80) -> None:  # noqa: ANN001 (a Playwright page)
    """Press Tab until the focused element matches `selector` (the keyboard path a user takes)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} is not reachable with Tab")


def focus_is_visible(page) -> bool:  # noqa: ANN001
    return page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return (s.outlineStyle !== "none" && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== "none"; }""")


@needs_chromium
@needs_axe
@pytest.mark.parametrize("width, height", [(1280, 900), (390, 844)])
def test_the_page_passes_an_accessibility_audit_and_works_from_the_keyboard(app: App, tmp_path: Path, width: int, height: int):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(app.url)
        expect(page.locator("#question textarea")).to_be_visible(timeout=60_000)
        # ask with the keyboard alone: Tab to the question, type, Enter
        tab_to(page, "#question textarea")
        assert focus_is_visible(page)
        page.keyboard.type("How many people were killed in the attack on Bamako?")
        page.keyboard.press("Enter")
        expect(page.locator(".rag-card").first).to_be_visible(timeout=60_000)
        status = page.locator("#rag-status")  # the live region speaks the banner's words
        expect(status).to_have_attribute("aria-live", "polite")
        expect(status).to_have_text(page.locator(".rag-banner").inner_text())
        page.add_script_tag(path=str(AXE))
        settled(page)
        assert page.evaluate(AUDIT) == []
        page.screenshot(path=str(tmp_path / f"toll-{width}.png"), full_page=True)
        # open a source in context from the keyboard
        tab_to(page, ".rag-card .rag-source summary")
        assert focus_is_visible(page)
        page.keyboard.press("Enter")
        expect(page.locator(".rag-card .rag-source-text").first).to_be_visible()
        # an example, from the keyboard; then a question the sources do not answer
        tab_to(page, ".rag-example")
        assert focus_is_visible(page)
        page.keyboard.press("Enter")
        expect(status).not_to_have_text("The sources answer this: 5 passages from 3 sources below.", timeout=60_000)
        box = page.locator("#question textarea")
        box.fill("What is a good recipe for banana bread?")
        box.press("Enter")
        expect(page.locator(".rag-banner.unanswered")).to_be_visible(timeout=60_000)
        expect(status).to_contain_text("The sources don't answer this")
        settled(page)
        assert page.evaluate(AUDIT) == []
        page.screenshot(path=str(tmp_path / f"unanswered-{width}.png"), full_page=True)
        browser.close()
    keep = os.environ.get("RAG_SCREENSHOTS")
    if keep:
        for name in (f"toll-{width}.png", f"unanswered-{width}.png"):
            shutil.copy(tmp_path / name, Path(keep) / name)
