"""spotting_core: action spotting in soccer broadcasts. The folders follow the path a frame takes:

    io/        SoccerNet files (labels, results, features), video probe/decode, ffmpeg, downloads
    features/  frames -> features: backbones, SoccerNet's ResNet-152 + PCA, decoded frames, entities
    models/    one paper per file behind one contract (models/base.py); the registry and checkpoints
    engine/    clips and training, whole-half inference + the one nms(), spot, the official Average-mAP
    media/     reel plans, cutting, edit lists
    review/    matches and the review store
    synth/     the synthetic benchmark, the demo match, toy videos
    runtime.py the one cache root and the one device resolver; errors.py the one-line user errors
    cli.py     `spotting --help`

Nothing here imports the app (app.py, pages/).
"""

__version__ = "0.1.0"
