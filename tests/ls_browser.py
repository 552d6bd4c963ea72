"""A person in Label Studio 1.23.2's web UI, as small steps for browser tests (selenium).

Debian's `chromium` and `chromium-driver` (no browser download: Selenium Manager is never asked
because the driver's path is given), headless. Each step waits for what a person would wait for
and fails with what it saw. The selectors are Label Studio 1.23.2's own (class names `lsf-*`,
aria-labels of its buttons); a new Label Studio version may need them changed here only.

    driver = make_driver()
    login(driver, url, email, password)
    label_all(driver, url, project_id)         # the Data Manager's "Label All Tasks"
    task = current_task_id(driver); current_task_image_ok(driver); ticked(driver)
    choose(driver, "porn"); submit(driver)     # or skip(driver)
    time_until_servable(lambda: browser_next(driver, project_id), since=submitted_at)
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 20.0  # a step on the shared 2-core machine: Label Studio renders in 1-5 s

SUBMIT = 'button[aria-label="Submit current annotation"]'
UPDATE = 'button[aria-label="Update current annotation"]'
SKIP = 'button[aria-label="skip-task"]'
TASK_ID = ".lsf-current-task__task-id"
CHOICE_INPUT = '.lsf-choice__checkbox input[name="{}"]'


def missing_browser() -> str | None:
    """Why a browser test cannot run here (None: it can): the apt packages or selenium."""
    pairs = (("chromium", CHROMIUM), ("chromium-driver", CHROMEDRIVER))
    lacking = [pkg for pkg, path in pairs if not path.exists()]
    if lacking:
        return f"no {' or '.join(lacking)}: apt-get install -y {' '.join(lacking)}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: make install (the dev extra)"
    return None


def make_driver(width: int = 1400, height: int = 1000) -> Any:  # noqa: ANN401
    """A headless Chromium (Debian's) driven by Debian's chromedriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def _wait(driver: Any, what: str, until: Callable[[Any], Any], timeout: float = WAIT_S) -> Any:  # noqa: ANN401
    """`until(driver)` once it is truthy; fails naming `what` and the page's URL."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(until)
    except TimeoutException as err:
        raise AssertionError(f"waited {timeout:.0f} s for {what} at {driver.current_url}") from err


def _css(driver: Any, selector: str) -> list[Any]:  # noqa: ANN401
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def _enabled(driver: Any, selector: str) -> Any:  # noqa: ANN401
    """The first visible, enabled element of `selector`, else False (for _wait)."""
    return next((e for e in _css(driver, selector) if e.is_displayed() and e.is_enabled()), False)


def _click(driver: Any, element: Any, timeout: float = WAIT_S) -> None:  # noqa: ANN401
    """Click as a person would: scrolled into view (a long task pushes the choices under the
    bottom bar's buttons), and when a notice (Label Studio's toast after a submit, 2-5 s)
    covers the button, wait until it is gone, then click."""
    from selenium.common.exceptions import ElementClickInterceptedException

    end = time.perf_counter() + timeout
    while True:
        try:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
            element.click()
            return
        except ElementClickInterceptedException:
            if time.perf_counter() > end:
                raise
            time.sleep(0.1)


def login(driver: Any, url: str, email: str, password: str) -> None:  # noqa: ANN401
    """Log in through the login form; fails with the form's message when refused."""
    from selenium.webdriver.common.by import By

    driver.get(url.rstrip("/") + "/user/login/")
    _wait(driver, "the login form", lambda d: _css(d, 'input[name="email"]'))
    driver.find_element(By.NAME, "email").send_keys(email)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    _wait(
        driver, f"the login of {email} to be accepted", lambda d: "/user/login" not in d.current_url
    )


def label_all(driver: Any, url: str, project_id: int) -> int:  # noqa: ANN401
    """Open the project's Data Manager, click "Label All Tasks", wait for the first task of the
    label stream; its task id."""
    from selenium.webdriver.common.by import By

    driver.get(f"{url.rstrip('/')}/projects/{project_id}/data")
    xpath = "//button[normalize-space(.)='Label All Tasks']"
    button = _wait(driver, '"Label All Tasks"', lambda d: d.find_elements(By.XPATH, xpath))[0]
    _wait(driver, '"Label All Tasks" to be enabled', lambda d: button.is_enabled())
    _click(driver, button)
    return wait_for_task(driver)


def current_task_id(driver: Any) -> int | None:  # noqa: ANN401
    """The id of the task on screen (the bottom bar's number), None when none shows."""
    shown = _css(driver, TASK_ID)
    if not shown:
        return None
    first = shown[0].text.strip().splitlines()
    return int(first[0].lstrip("#")) if first and first[0].lstrip("#").isdigit() else None


def wait_for_task(driver: Any, other_than: int | None = None, timeout: float = WAIT_S) -> int:  # noqa: ANN401
    """Wait until a task other than `other_than` is on screen with its controls; its id."""

    def shown(d: Any) -> int | None:  # noqa: ANN401
        task = current_task_id(d)
        if task is None or task == other_than or not _css(d, ".lsf-choice__checkbox"):
            return None
        return task

    return int(_wait(driver, f"a task other than {other_than}", shown, timeout))


def current_task_image_ok(driver: Any, timeout: float = WAIT_S) -> dict[str, Any]:  # noqa: ANN401
    """The task's image as the browser decoded it: {src, width, height} once it has loaded with
    a natural size; fails on a broken image (loaded, width 0) or one that never loads."""
    script = (
        "const i = document.querySelector('img[alt=\"image\"]');"
        "return i ? {src: i.currentSrc || i.src, complete: i.complete,"
        " width: i.naturalWidth, height: i.naturalHeight} : null;"
    )
    seen: dict[str, Any] = {}

    def loaded(d: Any) -> dict[str, Any] | None:  # noqa: ANN401
        info = d.execute_script(script)
        seen["last"] = info
        return info if info and info["complete"] and info["width"] > 0 else None

    try:
        return dict(_wait(driver, "the task image to load", loaded, timeout))
    except AssertionError as err:
        raise AssertionError(f"{err}: the image is broken or missing ({seen.get('last')})") from err


def ticked(driver: Any) -> list[str]:  # noqa: ANN401
    """The choices ticked on screen (a pre-annotation shows as ticked choices)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        boxes = _css(driver, ".lsf-choice__checkbox input")
        return [e.get_attribute("name") for e in boxes if e.is_selected()]
    except StaleElementReferenceException:  # re-rendered while read: read again
        return ticked(driver)


def choose(driver: Any, value: str) -> None:  # noqa: ANN401
    """Click the choice `value` (a ticked one unticks: Label Studio toggles)."""
    boxes = _css(driver, CHOICE_INPUT.format(value))
    if not boxes:
        names = [e.get_attribute("name") for e in _css(driver, ".lsf-choice__checkbox input")]
        raise AssertionError(f"no choice {value!r} on screen (choices: {names})")
    before = value in ticked(driver)
    _click(driver, boxes[0].find_element("xpath", "./ancestor::label"))
    # Label Studio re-renders the choices on a click: read them again, never the old element
    _wait(driver, f"choice {value!r} to toggle", lambda d: (value in ticked(d)) != before)


def submit(driver: Any, timeout: float = WAIT_S, wait: bool = True) -> tuple[int, float]:  # noqa: ANN401
    """Click Submit on the task on screen; (its id, time.perf_counter() of the click). With
    `wait`, returns once Label Studio has moved on (another task, or none left); without, at
    once (to time what follows: time_until_servable, then wait_for_task)."""
    task = current_task_id(driver)
    button = _wait(driver, "an enabled Submit button", lambda d: _enabled(d, SUBMIT))
    _click(driver, button)
    clicked = time.perf_counter()
    if wait:
        moved = lambda d: _moved_on(d, task)  # noqa: E731
        _wait(driver, f"Label Studio to move on from task {task}", moved, timeout)
    return int(task or 0), clicked


def skip(driver: Any, timeout: float = WAIT_S) -> int:  # noqa: ANN401
    """Click Skip on the task on screen; its id. Waits until Label Studio has moved on."""
    task = current_task_id(driver)
    _click(driver, _wait(driver, "an enabled Skip button", lambda d: _enabled(d, SKIP)))
    _wait(
        driver, f"Label Studio to move on from task {task}", lambda d: _moved_on(d, task), timeout
    )
    return int(task or 0)


def _moved_on(driver: Any, task: int | None) -> bool:  # noqa: ANN401
    now = current_task_id(driver)
    return (now is not None and now != task) or stream_finished(driver)


def stream_finished(driver: Any) -> bool:  # noqa: ANN401
    """Label Studio says the label stream has no task left for this person."""
    text = driver.execute_script("return document.body.innerText") or ""
    return "no more tasks" in text.lower() or "all tasks have been" in text.lower()


def messages(driver: Any) -> list[str]:  # noqa: ANN401
    """The texts of the modal dialogs and notices on screen (Label Studio's refusals)."""
    found = _css(driver, ".ant-modal-content, .lsf-modal__content, [role=dialog], .lsf-toast")
    return [e.text.strip() for e in found if e.is_displayed() and e.text.strip()]


def buttons(driver: Any) -> list[str]:  # noqa: ANN401
    """The labels of the visible buttons of the labelling area (what a person is offered)."""
    out = []
    for e in _css(driver, ".lsf-bottombar button, .lsf-controls button"):
        if e.is_displayed():
            out.append((e.text.strip() or e.get_attribute("aria-label") or "").strip())
    return [b for b in out if b]


def browser_next(driver: Any, project_id: int) -> tuple[int, dict[str, Any] | None]:  # noqa: ANN401
    """`GET /api/projects/<id>/next` as the logged-in person (the browser's session): what
    "Label All Tasks" would serve them now; (HTTP status, task or None)."""
    answer = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"fetch('/api/projects/{int(project_id)}/next', {{credentials: 'same-origin'}})"
        ".then(r => r.text().then(t => done([r.status, t])))"
        ".catch(e => done([0, String(e)]));"
    )
    status, body = int(answer[0]), answer[1]
    import json

    task = json.loads(body) if status == 200 and body else None
    return status, task if isinstance(task, dict) and "id" in task else None


def time_until_servable(
    get_next: Callable[[], tuple[int, dict[str, Any] | None]],
    since: float,
    timeout: float = 60.0,
    accept: Callable[[dict[str, Any]], bool] = lambda task: True,
    poll_s: float = 0.1,
) -> tuple[float, dict[str, Any]]:
    """Seconds from `since` (a time.perf_counter(), e.g. submit()'s click) until `get_next`
    serves a task that `accept`s (say, one of the next round), and that task. Fails after
    `timeout` s with the last answer."""
    last: tuple[int, Any] = (0, None)
    while time.perf_counter() - since < timeout:
        last = get_next()
        if last[1] is not None and accept(last[1]):
            return time.perf_counter() - since, last[1]
        time.sleep(poll_s)
    raise AssertionError(f"no acceptable task servable within {timeout:.0f} s; last answer {last}")


def screenshot(driver: Any, path: str | Path) -> Path:  # noqa: ANN401
    """Save the page as PNG at `path` (written to a temporary name, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    if not driver.save_screenshot(str(tmp)):
        raise AssertionError(f"Chromium could not save a screenshot to {tmp}")
    shutil.move(tmp, path)
    return path


def open_task(driver: Any, url: str, project_id: int, task_id: int, n_choices: int = 1) -> None:  # noqa: ANN401
    """Open one task from the Data Manager (`?task=<id>`), as a person clicking its row; waits
    until its `n_choices` Choices controls show (a unit task has one per keyframe)."""
    driver.get(f"{url.rstrip('/')}/projects/{project_id}/data?task={task_id}")
    _wait(
        driver,
        f"task {task_id} with {n_choices} choice control(s)",
        lambda d: len(_css(d, ".lsf-choices")) == n_choices,
    )


def ticked_each(driver: Any) -> list[list[str]]:  # noqa: ANN401
    """The ticked choices of each Choices control on screen, in page order (a unit task: one
    list per keyframe)."""
    from selenium.common.exceptions import StaleElementReferenceException

    try:
        return [
            [
                e.get_attribute("name")
                for e in group.find_elements("css selector", "input")
                if e.is_selected()
            ]
            for group in _css(driver, ".lsf-choices")
        ]
    except StaleElementReferenceException:
        return ticked_each(driver)


def choose_in(driver: Any, idx: int, value: str) -> None:  # noqa: ANN401
    """Click the choice `value` of the `idx`-th Choices control (keyframe idx of a unit task)."""
    group = _css(driver, ".lsf-choices")[idx]
    box = group.find_element("css selector", f'input[name="{value}"]')
    before = value in ticked_each(driver)[idx]
    _click(driver, box.find_element("xpath", "./ancestor::label"))
    _wait(
        driver,
        f"choice {value!r} of keyframe {idx + 1} to toggle",
        lambda d: (value in ticked_each(d)[idx]) != before,
    )


def visible_sharpness(driver: Any, element: Any) -> float:  # noqa: ANN401
    """How sharp the screen is over `element`'s box: the variance of the Laplacian of that part
    of a screenshot. What a person sees, whichever element paints it: a computed CSS `filter`
    on an <img> says nothing if something else draws the pixels (campaign.blur: hover)."""
    import cv2
    import numpy as np

    x, y, w, h, dpr = driver.execute_script(
        "const r = arguments[0].getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height, window.devicePixelRatio];",
        element,
    )
    shot = cv2.imdecode(
        np.frombuffer(driver.get_screenshot_as_png(), np.uint8), cv2.IMREAD_GRAYSCALE
    )
    top, left = max(0, int(y * dpr)), max(0, int(x * dpr))  # a box may overhang the page
    crop = shot[top : int((y + h) * dpr), left : int((x + w) * dpr)]
    assert crop.size > 0, f"the element's box {x, y, w, h} is off the screenshot"
    return float(cv2.Laplacian(crop, cv2.CV_64F).var())
