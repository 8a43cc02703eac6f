from typing import get_args

from sweep.schema.objectives import OBJECTIVES, ObjectiveName


def test_objective_name_lists_exactly_the_objectives():
    assert list(get_args(ObjectiveName)) == list(OBJECTIVES)
