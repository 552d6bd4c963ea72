"""`alnsfw campaign serve`: the campaign as a long-running model server beside Label Studio.

Why: a round run by hand is a new process that imports TensorFlow and reloads the model (50-80 s
on the demo) while people wait, and somebody must remember to run it. The service holds the
campaign (its learner, feature cache and state) in memory; a background worker runs a round by
itself when enough new labels arrived (campaign.serve.retrain_every, default al.query_size) or
when the open batch runs low (campaign.serve.low_water), so the next batch is queued before
people run out.

Label Studio's webhooks time out after 1 s and are never retried, so a webhook only wakes the
worker, which then pulls; a periodic reconcile pull (campaign.serve.reconcile_seconds) catches
whatever a lost webhook missed. The CLI commands keep working beside it: every step takes the
campaign's one lock, only for its duration.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alnsfw.campaign.core import Campaign, CampaignError

log = logging.getLogger(__name__)


@dataclass
class ServiceStats:
    """What the service did, for /health and the measurements in docs/campaign.md."""

    rounds: int = 0
    wakeups: int = 0
    reconciles: int = 0
    last_round_seconds: float | None = None
    last_error: str | None = None
    round_log: list[dict[str, Any]] = field(default_factory=list)


class CampaignService:
    """The background worker of a served campaign."""

    def __init__(
        self,
        campaign: Campaign,
        retrain_every: int,
        low_water: int,
        reconcile_seconds: float,
    ) -> None:
        self.campaign = campaign
        self.retrain_every = int(retrain_every)
        self.low_water = int(low_water)
        self.reconcile_seconds = float(reconcile_seconds)
        self.stats = ServiceStats()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.version = campaign.model_version()

    @classmethod
    def from_config(cls, campaign: Campaign) -> CampaignService:
        """Settings of campaign.serve (schema defaults; retrain_every null = al.query_size)."""
        cfg = campaign.cfg["serve"]
        every = cfg["retrain_every"] or campaign.settings.query_size
        low = cfg["low_water"] if cfg["low_water"] is not None else max(1, every // 2)
        return cls(campaign, every, low, cfg["reconcile_seconds"])

    def wake(self) -> None:
        """A webhook arrived (or a person asked to train): pull soon. Returns at once."""
        self.stats.wakeups += 1
        self._wake.set()

    def start(self) -> None:
        """Run the worker in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="campaign-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the worker to stop after its current step and wait for it."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def step(self) -> bool:
        """One pull, and a round if one is due; True when a round ran."""
        t0 = time.perf_counter()
        report = self.campaign.step(self.retrain_every, self.low_water)
        if report is None:
            return False
        if not report.trained:  # e.g. too few labels for a first round: said once, then wait
            if report.message != self.stats.last_error:
                print(f"round {report.round + 1} not yet: {report.message}", flush=True)
            self.stats.last_error = report.message
            return False
        self.version = f"round-{report.round}"
        self.stats.rounds += 1
        self.stats.last_round_seconds = time.perf_counter() - t0
        lag = self._since_newest_label()
        self.stats.round_log.append(
            {
                **{f"{k} s": v for k, v in report.seconds.items()},
                "round": report.round,
                "seconds": self.stats.last_round_seconds,
                "since_last_label": lag,
            }
        )
        print(report.text(), flush=True)
        if lag is not None:
            print(
                f"  live: the next batch is servable {lag:.2f} s after the newest label", flush=True
            )
        return True

    def _since_newest_label(self) -> float | None:
        """Seconds from the newest label this round trained on (Label Studio's timestamp of
        the annotation, i.e. its Submit) to now, when its predictions are in place: what a
        person waits for the next batch at worst."""
        stamps = [e.get("updated_at") for e in self.campaign.log.events if e.get("updated_at")]
        if not stamps:
            return None
        try:
            newest = max(datetime.fromisoformat(str(s).replace("Z", "+00:00")) for s in stamps)
        except ValueError:
            return None
        if newest.tzinfo is None:
            newest = newest.replace(tzinfo=UTC)
        return (datetime.now(UTC) - newest).total_seconds()

    def _run(self) -> None:
        while not self._stop.is_set():
            woken = self._wake.wait(self.reconcile_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            if not woken:
                self.stats.reconciles += 1
            try:
                while self.step():  # labels may have arrived during the round: look again
                    self.stats.last_error = None
                    if self._stop.is_set():
                        return
            except CampaignError as err:  # server down, lock busy: said, then retried later
                self.stats.last_error = str(err)
                log.warning("campaign step failed (retried at the next wake-up): %s", err)
            except Exception as err:  # noqa: BLE001 - a bug must not end a week-long service
                self.stats.last_error = f"{type(err).__name__}: {err}"
                log.exception("campaign step failed (retried at the next wake-up)")
