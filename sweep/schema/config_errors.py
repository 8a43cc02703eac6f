"""The one-line description of a pydantic ValidationError and the checked dataset section of command-line options,
for the sweep package (both are defined in data/, the layer every package may import).
"""

from data.section import checked_dataset_section
from data.validation_errors import describe_validation_error

__all__ = ["checked_dataset_section", "describe_validation_error"]
