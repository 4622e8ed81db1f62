"""The training library: what the training steps (train_classifier, sweep trials,
finetune_encoder, the loop's training step) share, each part owning its short transactions.

``data``: the labels a run learns from and their vectors; ``progress``: progress records that
the experiment page shows live, and the admin's stop; ``adoption``: a model an earlier try of
the same task already committed; ``embedding``: embedding a dataset and building the vector
index; ``gate``: the promotion gate as a step. The arithmetic lives in ``include.ml``.
"""
