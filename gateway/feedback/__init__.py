"""Partner feedback on a decision (发起—响应—反馈): what was granted and used."""

from gateway.feedback.model import (
    FEEDBACK_MAX_BYTES,
    FEEDBACK_PER_DECISION,
    FeedbackBody,
    FeedbackDetail,
    scene_problems,
)

__all__ = [
    "FEEDBACK_MAX_BYTES",
    "FEEDBACK_PER_DECISION",
    "FeedbackBody",
    "FeedbackDetail",
    "scene_problems",
]
