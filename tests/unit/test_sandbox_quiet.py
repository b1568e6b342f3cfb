"""The sandbox silences exactly moto's two known warnings (make demo's output), no other."""
import logging

from sandbox.aws_local import MOTO_NOISE, quiet_moto


def test_moto_s_known_warnings_are_dropped_and_its_others_still_show(caplog):
    caplog.set_level(logging.WARNING)
    quiet_moto()
    quiet_moto()  # idempotent: one filter per logger
    parse = logging.getLogger("moto.stepfunctions.parser.asl.parse.preprocessor")
    task = logging.getLogger("moto.stepfunctions.parser.asl.component.state.exec.execute_state")
    parse.warning("ToleratedFailureCount declarations currently have no effect on the program evaluation.")
    task.warning("State Task encountered an unhandled exception that lead to a State.Runtime error.")
    parse.warning("ToleratedFailurePercentage declarations currently have no effect on the program evaluation.")
    assert [r.getMessage() for r in caplog.records] == [
        "ToleratedFailurePercentage declarations currently have no effect on the program evaluation."]
    assert all(len(logging.getLogger(name).filters) == 1 for name in MOTO_NOISE)
