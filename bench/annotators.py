"""Checking the people, on the real sentiment sentences (../shared/data): three simulated
annotators (accuracy 0.95, 0.90, 0.70 on the true labels), 10 % overlap, 5 % hidden gold, and a
reviewer who checks 20 % of labels with accuracy 0.98.

(a) **Gold alerts** over 20 seeds, through the platform's rule (``include.services.gold``:
    ``Standing.below`` after every checked answer, the 95 % Wilson interval, ``MIN_ANSWERS``):
    at how many gold answers the 0.70 annotator is first flagged (goal: before 40), and how often
    the 0.95 and 0.90 annotators ever are (goal: false alarms <= 5 %), at the dataset thresholds
    0.80 (the default) and 0.85; with the platform's evidence (gold and reviewers' verdicts) and
    with gold alone.
(b) **Reliability-weighted labels** (``include.ml.reliability``, Dawid-Skene seeded by gold and
    the reviewer's verdicts) train the platform's default head (``train_head``, logistic, with
    each label's posterior as its weight); macro-F1 on a held-out test split with true labels,
    against the same head on the true labels of the same items (goal: >= 0.98x) and on every
    label taken as it came ("naive"), over 5 seeds.
(c) **The review page over HTTP** on 1,000,000 tasks (gunicorn 2x4 as ``make run``, the method
    of ``bench/labeling.py``): opening a label to review, and a review press (accept, then the
    redirect to the next), p50/p95 beside ``/healthz``. Goal: p95 < 50 ms.
"""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any

import numpy as np
import requests

from bench._env import postgres, save, summary
from bench.labeling import _gunicorn, _timed_requests
from bench.public_data import load
from bench.webapp_queries import N_TASKS, populate

ACCURACY = {"a95": 0.95, "a90": 0.90, "a70": 0.70}
OVERLAP, GOLD_SHARE, REVIEW_SHARE, REVIEWER_ACCURACY = 0.10, 0.05, 0.20, 0.98
SEEDS = 20


def _answer(rng: np.random.Generator, truth: int, accuracy: float, k: int) -> int:
    if rng.random() < accuracy:
        return truth
    return int((truth + rng.integers(1, k)) % k)


# -- (a) gold alerts ------------------------------------------------------------------------------
def _first_alert(
    rng: np.random.Generator, accuracy: float, labels: int, threshold: float, with_reviews: bool
) -> tuple[int | None, int]:
    """Label ``labels`` tasks in order; each is hidden gold (share GOLD_SHARE of the queue) or a
    real task a reviewer checks with probability REVIEW_SHARE. Returns the gold answers given
    when the platform's rule first alerts (None: never) and the gold answers given in all."""
    from include.services.gold import Standing, wilson

    correct = answered = gold_seen = 0
    first: int | None = None
    for _ in range(labels):
        right = rng.random() < accuracy
        if rng.random() < GOLD_SHARE:
            gold_seen += 1
            answered, correct = answered + 1, correct + right
        elif with_reviews and rng.random() < REVIEW_SHARE:
            # the reviewer agrees with a right label 98 % of the time, and catches a wrong one as often
            accepted = right if rng.random() < REVIEWER_ACCURACY else not right
            answered, correct = answered + 1, correct + accepted
        else:
            continue
        low, high = wilson(correct, answered)
        if first is None and Standing(answered, correct, low, high, threshold).below:
            first = gold_seen
    return first, gold_seen


def gold_alerts(n_items: int) -> dict[str, Any]:
    from include.services.gold import MIN_ANSWERS

    per_annotator = n_items // len(ACCURACY)  # each labels a third of the set
    out: dict[str, Any] = {"labels_per_annotator": per_annotator, "min_answers": MIN_ANSWERS}
    for evidence, with_reviews in (("gold_and_reviews", True), ("gold_only", False)):
        for threshold in (0.80, 0.85):
            caught_at: list[int | None] = []
            false_alarms, gold_given = 0, []
            for seed in range(SEEDS):
                rng = np.random.default_rng(seed)
                for name, accuracy in ACCURACY.items():
                    first, given = _first_alert(rng, accuracy, per_annotator, threshold, with_reviews)
                    gold_given.append(given)
                    if name == "a70":
                        caught_at.append(first)
                    elif first is not None:
                        false_alarms += 1
            caught = [c for c in caught_at if c is not None]
            out[f"{evidence}_threshold_{threshold:.2f}"] = {
                "gold_answers_per_annotator_mean": float(np.mean(gold_given)),
                "a70_caught_in_seeds": f"{len(caught)}/{SEEDS}",
                "a70_caught_before_40_gold": f"{sum(c < 40 for c in caught)}/{SEEDS}",
                "a70_gold_answers_at_alert_median": float(np.median(caught)) if caught else None,
                "a70_gold_answers_at_alert_max": max(caught) if caught else None,
                "false_alarms": f"{false_alarms}/{2 * SEEDS}",
                "false_alarm_rate": false_alarms / (2 * SEEDS),
            }
    return out


# -- (b) reliability-weighted training ------------------------------------------------------------
def _macro_f1(head: Any, x: np.ndarray, y: np.ndarray) -> float:
    from sklearn.metrics import f1_score

    predicted = head.predict_proba(x, device="cpu").argmax(axis=1)
    return float(f1_score(y, predicted, average="macro"))


def reliability_training(x: np.ndarray, y: np.ndarray, names: list[str], seeds: int = 5) -> dict[str, Any]:
    from include.ml.reliability import estimate
    from include.ml.training.params import TrainParams
    from include.ml.training.train import train_head

    k = len(names)
    params = TrainParams()
    runs = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        test, pool = order[: len(y) // 5], order[len(y) // 5 :]
        people = list(ACCURACY)
        labels: list[tuple[int, str, int]] = []
        for j, item in enumerate(pool):
            first = people[j % len(people)]
            who = [first]
            if rng.random() < OVERLAP:
                who.append(people[(j + 1) % len(people)])
            labels.extend((j, a, _answer(rng, int(y[item]), ACCURACY[a], k)) for a in who)
        known = {j: int(y[item]) for j, item in enumerate(pool) if rng.random() < GOLD_SHARE}
        # The reviewer's verdict on 20 % of the labels: their answer, right 98 % of the time.
        reviewed = {j for j, _, _ in labels if rng.random() < REVIEW_SHARE}
        labels.extend((j, "reviewer", _answer(rng, int(y[pool[j]]), REVIEWER_ACCURACY, k)) for j in reviewed)
        result = estimate(len(pool), k, labels, known)
        x_pool, y_true = x[pool], y[pool]
        true_head = train_head(x_pool, y_true, names, "minilm", params).head
        ds_head = train_head(x_pool, result.label(), names, "minilm", params, sample_weight=result.weight()).head
        naive_rows = [(j, c) for j, a, c in labels if a != "reviewer"]
        naive_head = train_head(
            x_pool[[j for j, _ in naive_rows]], np.asarray([c for _, c in naive_rows]), names, "minilm", params
        ).head
        runs.append(
            {
                "seed": seed,
                "true": _macro_f1(true_head, x[test], y[test]),
                "reliability": _macro_f1(ds_head, x[test], y[test]),
                "naive": _macro_f1(naive_head, x[test], y[test]),
                "label_accuracy_reliability": float((result.label() == y_true).mean()),
                "label_accuracy_naive": float(np.mean([c == y_true[j] for j, c in naive_rows])),
                "estimated_accuracy": {a: round(result.accuracy(a), 3) for a in people},
            }
        )
    mean = {key: float(np.mean([r[key] for r in runs])) for key in ("true", "reliability", "naive")}
    return {
        "items": len(y),
        "seeds": seeds,
        "macro_f1_mean": mean,
        "reliability_over_true": mean["reliability"] / mean["true"],
        "naive_over_true": mean["naive"] / mean["true"],
        "goal_reliability_over_true": 0.98,
        "runs": runs,
    }


# -- (c) the review page over HTTP ----------------------------------------------------------------
PRESSES = 300


def review_latency(db: str) -> dict[str, Any]:
    from sqlalchemy import text
    from werkzeug.security import generate_password_hash

    from include.db.session import get_engine
    from include.runtime.embedded_pg import free_port

    with get_engine(db).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO annotations (task_id, annotator_id, label, source, created_at, updated_at, synced_at) "
                "SELECT id, assigned_to, label, 'webapp', labeled_at, labeled_at, labeled_at FROM tasks "
                "WHERE status = 'labeled'"
            )
        )
        conn.execute(
            text(
                "INSERT INTO users (username, email, password_hash, role) VALUES ('rev', 'rev@b.io', :pw, 'reviewer')"
            ),
            {"pw": generate_password_hash("bench-password-1")},
        )
        waiting = conn.execute(text("SELECT count(*) FROM annotations")).scalar()
    with get_engine(db).connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE annotations"))
    port = free_port()
    proc = _gunicorn(db, port)
    base = f"http://127.0.0.1:{port}"
    try:
        s = requests.Session()
        login_page = s.get(f"{base}/login", timeout=10).text
        token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', login_page)
        assert token, "no CSRF token on the login page"
        s.post(f"{base}/login", data={"username": "rev", "password": "bench-password-1", "csrf_token": token[1]})
        health = requests.Session()
        _timed_requests(lambda _: health.get(f"{base}/healthz", timeout=10), range(30))
        baseline = summary(_timed_requests(lambda _: health.get(f"{base}/healthz", timeout=10), range(PRESSES)))
        opened: list[float] = []
        pressed: list[float] = []
        url = s.get(f"{base}/review/next?dataset_id=1", timeout=10).url
        for n in range(PRESSES + 20):
            started = time.perf_counter()
            page = s.get(url, timeout=10)
            took_open = (time.perf_counter() - started) * 1000
            assert page.status_code == 200 and "review-form" in page.text, page.text[:300]
            csrf = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page.text)
            seen = re.search(r'name="label_seen" value="([^"]+)"', page.text)
            assert csrf and seen
            started = time.perf_counter()
            answer = s.post(
                url,
                data={"csrf_token": csrf[1], "verdict": "accept", "label_seen": seen[1]},
                allow_redirects=False,
                timeout=10,
            )
            took_press = (time.perf_counter() - started) * 1000
            assert answer.status_code == 302, answer.text[:300]
            url = base + answer.headers["Location"]
            if n >= 20:  # warm-up first
                opened.append(took_open)
                pressed.append(took_press)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    open_s, press_s = summary(opened), summary(pressed)
    return {
        "tasks": N_TASKS,
        "labels_waiting_for_review": int(waiting or 0),
        "healthz_ms": baseline,
        "review_page_ms": open_s,
        "review_press_ms": press_s,
        "press_p95_over_healthz_p95": round(press_s["p95"] / baseline["p95"], 2),
        "goal_p95_ms": 50,
    }


def main() -> None:
    x, y, names, _ = load("sentiment")
    result: dict[str, Any] = {"data": "sentiment_labelled_sentences", "gold_alerts": gold_alerts(len(y))}
    result["reliability_training"] = reliability_training(x, y, names)
    with postgres("annotators") as db:
        populate(db)
        result["review_http"] = review_latency(db)
    save("annotators", result)


if __name__ == "__main__":
    main()
