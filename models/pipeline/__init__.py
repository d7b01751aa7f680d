"""The analysis pipeline, without Qt: frames in, observations and descriptions out.

reader (decodes sampled frames) -> feeder (look-ahead) -> worker (stages, models, by priority)
-> store (observations, cached per film) -> composer (descriptions); questions plans what the
vision-language model is asked for each pause; session owns the rules and drives them all.
"""
