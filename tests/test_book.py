"""The book (madutils.book): built from the executed notebooks of a run at the smoke scale and opened in headless
Chromium without any network, where its equations must render (MathJax served by the book itself), its figures
load and its search find a word."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")


def test_a_missing_run_says_what_to_do(tmp_path):
    from madutils.book import BookError, build

    with pytest.raises(BookError, match=r"no executed notebooks at .*run ./reproduce.sh first"):
        build("smoke", run=tmp_path / "none", out=tmp_path / "book")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BookError, match="holds none of the notebooks"):
        build("smoke", run=tmp_path / "empty", out=tmp_path / "book")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("book")
    run = tmp / "run"
    run.mkdir()
    # no MPLBACKEND: the kernels keep their inline backend, so the executed notebooks hold their figures
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"} | {"MAD_SCALE": "smoke", "MAD_ROOT": str(tmp)}
    (tmp / "madutils").mkdir()
    (tmp / "reproduce.sh").write_text("")
    shutil.copy(ROOT / "README.md", tmp / "README.md")
    for name in ("01_gaussian_martingale", "07_bring_your_own_model"):
        subprocess.run(
            [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / f"{name}.ipynb"), str(run / f"{name}.ipynb")]
            + ["-p", "scale", "smoke", "--cwd", str(ROOT / "notebooks"), "--no-progress-bar"],
            env=env,
            check=True,
            capture_output=True,
            timeout=900,
        )
    # a first run of both notebooks, then a run of notebook 07 only (./reproduce.sh --only 07): 01's page stays
    later = tmp / "later"
    later.mkdir()
    shutil.copy(run / "07_bring_your_own_model.ipynb", later)
    for folder in (run, later):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "madutils.book",
                "--scale",
                "smoke",
                "--run",
                str(folder),
                "--out",
                str(tmp / "book"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return tmp / "book" / "html"


@pytest.mark.slow
def test_the_book_holds_every_notebook_and_fetches_nothing(book):
    assert (book / "index.html").is_file() and (book / "search.html").is_file()
    page = (book / "01_gaussian_martingale.html").read_text()
    assert "_static/mathjax/tex-svg.js" in page and (book / "_static" / "mathjax" / "tex-svg.js").is_file()
    scripts = [line for line in page.split("<script")[1:] if 'src="http' in line.split(">")[0]]
    assert scripts == [], "a page loads a script from the internet"
    assert (book / "07_bring_your_own_model.html").is_file() and list((book / "_images").glob("*.png"))
    intro = (book / "index.html").read_text() + (book / "intro.html").read_text()
    assert ">later</span></code>" in intro and ">run</span></code>" in intro  # each page names the run it is from
    assert "sphinx-thebe" not in page and "THEBE_JS_URL" not in page


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM and DRIVER), reason="needs Chromium and chromedriver (Debian: chromium, chromium-driver)"
)
def test_the_book_renders_offline_in_headless_chromium(book):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                 "--window-size=1400,1000"):  # fmt: skip
        options.add_argument(flag)  # the proxy goes nowhere: nothing can be fetched from the network
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        # no page logs an error to the console (a script that fails, a fetch that file:// refuses), each has one
        # search field, and the footer is the project's own
        for name in ("intro.html", "01_gaussian_martingale.html", "07_bring_your_own_model.html", "search.html"):
            driver.get((book / name).as_uri() + ("?q=martingale" if name == "search.html" else ""))
            time.sleep(3)
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == [], f"{name}: {errors}"
            searches = driver.execute_script(
                "return Array.from(document.querySelectorAll('.search-button-field')).filter(e => e.offsetParent)"
                ".length"
            )
            assert searches == 1, f"{name}: {searches} search fields"
            footer = driver.execute_script(
                "return Array.from(document.querySelectorAll('footer')).map(f => f.innerText).join(' ')"
            )
            assert "MAD notebooks authors" in footer and "2023" not in footer, footer
        driver.get((book / "01_gaussian_martingale.html").as_uri())

        def wait(script, timeout=60):
            deadline = time.time() + timeout
            while time.time() < deadline:
                value = driver.execute_script(script)
                if value:
                    return value
                time.sleep(0.5)
            return driver.execute_script(script)

        # MathJax typeset every formula: each math element holds a rendered MathJax container, none is raw TeX
        rendered = wait("return document.querySelectorAll('mjx-container').length")
        assert rendered > 5, "no equation was typeset"
        raw = driver.execute_script(
            "return Array.from(document.querySelectorAll('span.math, div.math'))"
            ".filter(e => !e.querySelector('mjx-container')).length"
        )
        assert raw == 0, f"{raw} equations left as raw TeX"
        # headings typeset their mathematics too (the random walk away from μ_0)
        heading = wait(
            "return Array.from(document.querySelectorAll('h2')).filter(h => h.innerText.includes('random walk away')"
            " && h.querySelector('mjx-container')).length"
        )
        assert heading == 1, "a heading shows raw TeX"
        # every figure loaded
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.src.slice(0, 60), i.complete && i.naturalWidth > 0])"
        )
        figures = [ok for src, ok in images if "_images" in src or src.startswith("data:image/png")]
        assert figures and all(figures), images
        # the search works offline
        driver.get((book / "search.html").as_uri() + "?q=martingale")
        hits = wait("return document.querySelectorAll('#search-results li, ul.search li').length")
        assert hits >= 1, "the search found nothing"
    finally:
        driver.quit()
