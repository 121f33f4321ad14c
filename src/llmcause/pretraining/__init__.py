"""Data mixtures: the effect of a data domain on pretraining, with real proxy runs.

The question: what does adding a domain (code, math, ...) to the pretraining
mix do to each held-out loss, and which mixture should a big run use? The
mixture is an intervention. In designed proxy runs it is randomised, so its
effects are identified (at the proxy's scale); in a table of past runs it is
confounded by scale.

- `load_corpus`: the shipped six-domain byte corpus (last 100 KB of each held out).
- `KneserNeyLM`, `train_proxy`: the proxy that really trains (interpolated
  Kneser–Ney, byte level) and its run function `proxy_run` for `llmcause.runs`.
- `dirichlet_swarm`, `one_at_a_time`, `inclusion_design`: designs (uniform always an arm).
- `run_design`, `load_results`: execute a design resumably in a run store; read results back.
- `designed_effects`: replacement / augmentation effects paired by seed (and
  inclusion and swarm slopes); `observational_effects`: DML on past runs.
- `heldout_spearman`, `recommend_mixture`, `verify_recommendation`: mixing
  laws judged on unseen mixtures, a recommendation within the swarm's
  support, and its verification against the uniform mix by training.
- `rank_agreement`: Spearman between a cheap proxy and a bigger target.
- `past_runs`: a simulated, confounded table of past runs with known effects.
"""

from .._lazy import lazy_exports

_WHERE = {"load_results": "campaign", "read_design": "campaign", "run_design": "campaign", "load_corpus": "corpus",
          "mixture_blocks": "corpus", "dirichlet_swarm": "designs", "inclusion_design": "designs",
          "make_design": "designs", "one_at_a_time": "designs", "designed_effects": "effects",
          "observational_effects": "effects", "heldout_spearman": "laws", "KneserNeyLM": "ngram",
          "QuerySet": "ngram", "ProxyConfig": "proxy", "proxy_run": "proxy", "run_params": "proxy",
          "train_proxy": "proxy", "recommend_mixture": "recommend", "verify_recommendation": "recommend",
          "rank_agreement": "scale", "past_runs": "simulate"}

__all__ = [
    "load_results", "read_design", "run_design", "load_corpus", "mixture_blocks", "dirichlet_swarm",
    "inclusion_design", "make_design", "one_at_a_time", "designed_effects", "observational_effects",
    "heldout_spearman", "KneserNeyLM", "QuerySet", "ProxyConfig", "proxy_run", "run_params", "train_proxy",
    "recommend_mixture", "verify_recommendation", "rank_agreement", "past_runs",
]


# Names load from their submodule on first use, so `llmcause --help` loads neither scikit-learn nor pandas.
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
