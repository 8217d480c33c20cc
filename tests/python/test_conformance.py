"""Jupyter's kernel conformance suite (`jupyter_kernel_test`) run against the kettle kernel.

Every feature test of the suite is fed a real Rust snippet, so each one runs instead of being
skipped (the pager through kettle's `:doc <path>`). Rich output and clear_output go
through the course's own `kettle-display` crate, loaded once with `:dep` before the tests.
"""
from __future__ import annotations

import unittest
from pathlib import Path

import jupyter_kernel_test

ROOT = Path(__file__).resolve().parents[2]
DISPLAY_CRATE = ROOT / "crates" / "kettle-display"

# The first cell waits for evcxr to start (rust-analyzer, a first build): allow far more than the
# suite's 15 s per message for it.
WARM_UP_TIMEOUT = 180


class KettleKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "kettle"
    language_name = "rust"
    file_extension = ".rs"

    code_hello_world = 'println!("hello, world");'
    code_stderr = 'eprintln!("oops");'

    # Matches are compared as a set, so the prefix must select exactly one name.
    completion_samples = [
        {"text": "let hello_kettle = 1; hello_ket", "matches": {"hello_kettle"}},
    ]

    complete_code_samples = ["1", "let x = 1;", "fn f() {}"]
    incomplete_code_samples = ["fn f() {", "let v = vec![1,"]
    invalid_code_samples = ["let x = ) ;"]

    # A compile error: the suite wants exactly one output message (the `error`), and a panic would
    # also print its message on stderr.
    code_generate_error = 'let x: i32 = "not a number";'

    code_execute_result = [{"code": "1 + 2", "result": "3"}]

    code_display_data = [
        # evcxr's convention for rich output from a cell; the engine turns it into display_data.
        {
            "code": 'println!("EVCXR_BEGIN_CONTENT text/html\\n<b>hi</b>\\nEVCXR_END_CONTENT");',
            "mime": "text/html",
        },
        # The course's display crate, through the kernel's side channel.
        {
            "code": 'kettle_display::display(kettle_display::html("<b>hi</b>"));',
            "mime": "text/html",
        },
    ]

    code_clear_output = "kettle_display::clear_output(false);"

    code_inspect_sample = "Vec::new"
    # `:doc <path>` shows rust-analyzer's documentation in the frontend's pager.
    code_page_something = ":doc Vec::new"

    # History search uses glob patterns (messaging spec, history_request); must match only the
    # code of code_execute_result, because the suite's `unique` search expects one distinct hit.
    code_history_pattern = "1 + *"
    supported_history_operations = ("tail", "range", "search")

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        # Warm up outside the timed tests: the first execute waits for the engine to start, and
        # building the display crate takes a while too. A failure here is reported but does not
        # stop the class, so the tests that need no evaluation (kernel_info, is_complete) still
        # say what works.
        for code in (f':dep kettle-display = {{ path = "{DISPLAY_CRATE}" }}', "let _warm_up = 1;"):
            status = cls.run_untimed(code)
            if status != "ok":
                print(f"warm-up cell {code!r} ended with {status}")

    @classmethod
    def run_untimed(cls, code: str) -> str:
        """Runs `code` with a long timeout; returns the reply's status once the kernel is idle."""
        msg_id = cls.kc.execute(code)
        while True:
            reply = cls.kc.get_shell_msg(timeout=WARM_UP_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        while True:
            msg = cls.kc.get_iopub_msg(timeout=WARM_UP_TIMEOUT)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                return reply["content"]["status"]

if __name__ == "__main__":
    unittest.main()
