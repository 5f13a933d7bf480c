"""`make demo`: the whole complaints procedure in a few minutes, under demonstration policies.

demo/policies/ holds copies of shipped procedures with every deadline in seconds; they are marked
test_only (never a landlord's procedure) and load only through COMPLAINTS_POLICY_PATH, which `make demo`
sets. demo.driver files cases under them and answers as the landlord's staff and the resident would.
"""

from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parent / "policies"
