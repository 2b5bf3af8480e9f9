"""Real concurrent transactions in tests: work started in a thread has a database connection of its own."""

import threading

from django.db import connections


def in_thread(work) -> tuple[threading.Thread, dict]:
    """Start work() in a thread with its own connection; its result ("result") or error ("error") lands in
    the dict once the thread ends."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = work()
        except Exception as error:  # the test reads it
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome
