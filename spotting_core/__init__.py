"""spotting_core: action spotting in soccer broadcasts.

Start here:
- soccernet.py   class dictionaries, Labels-v2.json / results_spotting.json / feature files
- metrics.py     average_map(): the official Average-mAP, vectorised
- models/        one paper per file, registered in models.MODELS
- inference.py   sliding windows -> per-frame scores -> nms() -> events
- cli.py         `python -m spotting_core --help`
"""

__version__ = "0.1.0"
