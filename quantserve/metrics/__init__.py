"""Every accuracy and drift metric, once: classification, agreement, cosine, retrieval, channels, sequences.

Pure numpy functions (no scikit-learn at run time), used by build-time verification (optimizer) and served
evaluation (loadtest) alike, so the two can never disagree. One module per kind of comparison: `classification`
(against labels), `agreement` (answers alike), `embeddings` (vectors: cosine, neighbours), `values` (value by value,
channel by channel), `sequences` (CTC paths), `limits` (a value read against its budget), `blocks` (big outputs a
block at a time). Every public name is importable from here: callers write `metrics.cosine_similarity`.
"""

from quantserve.metrics.agreement import (
    PROBABILITY_SLACK,
    agreement_lower_bound,
    exact_agreement,
    label_set_agreement,
    probabilities,
    top1_agreement,
)
from quantserve.metrics.blocks import (
    BLOCK_BYTES,
)
from quantserve.metrics.classification import (
    CHANCE_MIN_SAMPLES,
    accuracy,
    as_probabilities,
    average_precision,
    binary_auc_roc,
    chance_labels_note,
    labels_at_chance,
    one_vs_rest,
    precision_recall_f1_macro,
    softmax,
)
from quantserve.metrics.embeddings import (
    REGRET_MAX_ROWS,
    EmbeddingDrift,
    cosine_similarity,
    embedding_drift,
    nearest_neighbour_regret,
    normalize_rows,
    retrieval_agreement,
    top_k_neighbours,
)
from quantserve.metrics.limits import (
    FLOAT_SLACK,
    beside_bar,
    beyond,
    on_its_side,
)
from quantserve.metrics.sequences import (
    PLACE_TOLERANCE,
    ctc_collapse,
    ctc_runs,
    decoded_sequence_agreement,
    located_path_agreement,
    path_sequence_agreement,
    position_agreement,
)
from quantserve.metrics.values import (
    abs_difference,
    channel_correlations,
    channel_errors,
    channel_spreads,
    relative_error,
)

__all__ = [
    "BLOCK_BYTES",
    "CHANCE_MIN_SAMPLES",
    "FLOAT_SLACK",
    "PLACE_TOLERANCE",
    "PROBABILITY_SLACK",
    "REGRET_MAX_ROWS",
    "EmbeddingDrift",
    "abs_difference",
    "accuracy",
    "agreement_lower_bound",
    "as_probabilities",
    "average_precision",
    "beside_bar",
    "beyond",
    "binary_auc_roc",
    "chance_labels_note",
    "channel_correlations",
    "channel_errors",
    "channel_spreads",
    "cosine_similarity",
    "ctc_collapse",
    "ctc_runs",
    "decoded_sequence_agreement",
    "embedding_drift",
    "exact_agreement",
    "label_set_agreement",
    "labels_at_chance",
    "located_path_agreement",
    "nearest_neighbour_regret",
    "normalize_rows",
    "on_its_side",
    "one_vs_rest",
    "path_sequence_agreement",
    "position_agreement",
    "precision_recall_f1_macro",
    "probabilities",
    "relative_error",
    "retrieval_agreement",
    "softmax",
    "top1_agreement",
    "top_k_neighbours",
]
