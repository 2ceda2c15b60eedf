"""UGL: Unifying Global and Local scene entities modelling for precise action spotting
(Tran, Do, Ly, Le; arXiv 2404.09951; 1st place SoccerNet-v2 action spotting challenge), on features.

The paper's network, with the frame encoder left out (here the input is pre-extracted per-frame
features; the end-to-end RegNet-Y + gate-shift encoder is another issue and plugs in front of
`UGLHead`, which takes per-frame global features whatever produced them):

    global feature g_t (B, T, D) ----------------------------- Linear D->d --> e_t
    entity features o_{t,i} (B, T, N, d_ent), mask (B, T, N) -- Linear d_ent->d --> o_{t,i}
      adaptive attention, per frame t:
        hard selection: s_i = || e_t + o_{t,i} ||_2,  a = softmax_i(s) over the valid entities,
                        keep entity i iff a_i >= 1 / n_valid  (an above-average share; never empty)
        self-attention (1 transformer encoder layer) over the kept entities, mean over them -> f^Ent_t
        (a frame without entities has f^Ent_t = 0)
      Ent-Env fusion: self-attention over the two tokens [e_t, f^Ent_t] (+ a learned token-type
        embedding), mean of the two outputs -> f^{Ent-Env}_t (B, T, d)
    long-term temporal reasoning: 1-layer bidirectional GRU (hidden min(d, 768)) -> Dropout(0.5)
        -> Linear -> (K + 1) logits per frame (the K events, then background at index K)

Trained on snippets of delta = 100 frames (the code's --clip_len 100; 50 s at 2 fps, so window_s =
delta / fps = 50) with the softmax focal loss over the K + 1 classes (gamma = 5; alpha = 0.75 for the
event classes and 0.25 for background). The value of alpha is ours: the authors' released loss is the
sigmoid form with fvcore's alpha = 0.25 on every positive, background included, which has no softmax
counterpart. On the synthetic benchmark (`synth.generate(games=10, seed=0, timelines=<the shared
valid labels>, half_minutes=20)`, `train.fit` for 6 epochs, one run each, so a rough guide) alpha =
0.75 reached test Average-mAP 0.162 loose / 0.124 tight, against 0.108 / 0.073 with 0.25 on the events
(the max-pool baseline after 10 epochs: 0.071 / 0.014). Frame scores are the softmax over K + 1,
returning the K event columns. NMS: a 1 s window (the code's --nms_window 2 frames) after the
E2E-Spot high-recall filter of 0.01.

Checked against the authors' code (github.com/Fsoft-AIC/unifying-global-local-feature:
model/modules.py ObjectFusion and GRUPrediction, train_e2e.py). Differences, on purpose:
    - their `key_padding_mask=hard_attn_mask` marks the *kept* entities as padding (PyTorch's
      convention is True = ignore); we attend over the kept ones, as the paper describes;
    - entities are an unordered set, so no positional encoding over them (theirs adds a sinusoidal
      one in detection order); the two fusion tokens get a learned token-type embedding instead;
    - standard post-norm transformer layers (one FFN of width 2048) instead of their two stacked FFNs;
    - frames are processed in one batched pass instead of a Python loop per frame;
    - their released training loss is the sigmoid (one-hot) focal form with the fvcore defaults
      (gamma 2, alpha 0.25); the issue asks for the softmax form with gamma 5, used here
      (`spotting_core.models.losses.sigmoid_focal_loss` holds the other form).
With `use_entities=False` the model is the E2E-Spot head alone (GRU on the global features).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from spotting_core.models.base import SpottingModel
from spotting_core.models.losses import focal_loss

MAX_HIDDEN = 768  # the authors cap the GRU width at RegNet-Y 800MF's 768


# ---------------------------------------------------------------------------------------------
# Blocks
# ---------------------------------------------------------------------------------------------
def hard_select(env: torch.Tensor, ent: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The adaptive hard selection. env (M, d), ent (M, N, d), mask (M, N) bool -> keep (M, N) bool.

    s_i = ||env + ent_i||, a = softmax over valid i, keep a_i >= 1 / n_valid (and valid).
    """
    with torch.no_grad():  # a hard (non-differentiable) choice; gradients flow through the kept entities
        score = torch.linalg.vector_norm(env[:, None, :] + ent, dim=-1)      # (M, N)
    score = score.masked_fill(~mask, float("-inf"))
    n_valid = mask.sum(dim=-1, keepdim=True)                                   # (M, 1)
    attn = torch.softmax(score, dim=-1).nan_to_num(0.0)                        # rows without entities: 0
    return mask & (attn >= 1.0 / n_valid.clamp_min(1))


def _encoder(d: int, heads: int, ffn: int, dropout: float, layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, ffn, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)


class AdaptiveEntityAttention(nn.Module):
    """Hard selection of the entities relevant to the global feature, then self-attention -> f^Ent."""

    def __init__(self, *, d: int, heads: int, ffn: int, dropout: float, layers: int = 1):
        super().__init__()
        self.encoder = _encoder(d, heads, ffn, dropout, layers)

    def forward(self, env: torch.Tensor, ent: torch.Tensor, mask: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """env (M, d), ent (M, N, d), mask (M, N) -> (f_ent (M, d), keep (M, N))."""
        keep = hard_select(env, ent, mask)                                     # (M, N)
        any_kept = keep.any(dim=-1)                                            # (M,)
        out = torch.zeros_like(env)
        if any_kept.any():
            rows = torch.nonzero(any_kept).flatten()
            k = keep[rows]                                                     # (M', N)
            h = self.encoder(ent[rows], src_key_padding_mask=~k)               # (M', N, d)
            h = (h * k[..., None]).sum(dim=1) / k.sum(dim=1, keepdim=True)     # (M', d) mean of kept
            out = out.index_put((rows,), h)
        return out, keep


class EntEnvFusion(nn.Module):
    """Self-attention over [e_t, f^Ent_t] and average pooling -> f^{Ent-Env}_t."""

    def __init__(self, *, d: int, heads: int, ffn: int, dropout: float, layers: int = 1):
        super().__init__()
        self.token_type = nn.Parameter(torch.zeros(2, d))
        nn.init.normal_(self.token_type, std=0.02)
        self.encoder = _encoder(d, heads, ffn, dropout, layers)

    def forward(self, env: torch.Tensor, ent: torch.Tensor) -> torch.Tensor:  # (M, d), (M, d)
        tokens = torch.stack([env, ent], dim=1) + self.token_type              # (M, 2, d)
        return self.encoder(tokens).mean(dim=1)                                # (M, d)


class UGLHead(nn.Module):
    """Everything after the frame encoder: (B, T, D) global features [+ entities] -> (B, T, K+1) logits."""

    def __init__(self, *, global_dim: int, num_classes: int, use_entities: bool, entity_dim: int,
                 d_model: int, heads: int, ffn_dim: int, attn_dropout: float, gru_hidden: int,
                 dropout: float):
        super().__init__()
        self.use_entities = use_entities
        if use_entities:
            self.env_proj = nn.Linear(global_dim, d_model)
            self.ent_proj = nn.Linear(entity_dim, d_model)
            self.entities = AdaptiveEntityAttention(d=d_model, heads=heads, ffn=ffn_dim, dropout=attn_dropout)
            self.fusion = EntEnvFusion(d=d_model, heads=heads, ffn=ffn_dim, dropout=attn_dropout)
            gru_in = d_model
        else:
            gru_in = global_dim
        hidden = gru_hidden or min(gru_in, MAX_HIDDEN)
        self.gru = nn.GRU(gru_in, hidden, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden, num_classes + 1)
        self.last_keep: torch.Tensor | None = None  # (B, T, N) entities kept by the hard selection

    def forward(self, g: torch.Tensor, entities: torch.Tensor | None = None,
                entity_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T, _ = g.shape
        h = g
        if self.use_entities:
            env = self.env_proj(g).reshape(B * T, -1)                          # (B*T, d)
            if entities is None or entities.shape[2] == 0:
                f_ent = torch.zeros_like(env)
                self.last_keep = None
            else:
                N = entities.shape[2]
                if entity_mask is None:
                    entity_mask = torch.ones(B, T, N, dtype=torch.bool, device=g.device)
                ent = self.ent_proj(entities.to(g.dtype)).reshape(B * T, N, -1)   # (B*T, N, d)
                f_ent, keep = self.entities(env, ent, entity_mask.reshape(B * T, N).to(torch.bool))
                self.last_keep = keep.reshape(B, T, N).detach()
            h = self.fusion(env, f_ent).reshape(B, T, -1)                      # (B, T, d)
        y, _ = self.gru(h)                                                     # (B, T, 2 * hidden)
        return self.classifier(self.dropout(y))                                # (B, T, K + 1)


# ---------------------------------------------------------------------------------------------
# Config, model, loss
# ---------------------------------------------------------------------------------------------
@dataclass
class Config:
    input_dim: int = 512
    num_classes: int = 17
    fps: float = 2.0
    window_s: float = 50.0          # delta = 100 frames at 2 fps (the code's --clip_len 100)
    use_entities: bool = True       # the local-entity branch and the Ent-Env fusion
    entity_dim: int = 256           # GLIP region features in the authors' code
    d_model: int = 0                # width of the entity / fusion attention; 0 = min(input_dim, 768)
    heads: int = 8
    ffn_dim: int = 2048
    attn_dropout: float = 0.1
    gru_hidden: int = 0             # 0 = min(GRU input, 768)
    dropout: float = 0.5            # before the per-frame classifier
    focal_gamma: float = 5.0
    focal_alpha: float = 0.75       # weight of the K event classes; background gets 1 - alpha
    nms_window_s: float = 1.0
    nms_threshold: float = 0.01
    lr: float = 1e-3                # training defaults of the authors' train_e2e.py
    batch_size: int = 8
    epochs: int = 50


class UGL(SpottingModel):
    Config = Config
    output_mode = "sequence"

    def __init__(self, cfg: Config):
        super().__init__(cfg)
        self.entity_inputs = cfg.use_entities
        d_model = cfg.d_model or min(cfg.input_dim, MAX_HIDDEN)
        self.head = UGLHead(global_dim=cfg.input_dim, num_classes=cfg.num_classes,
                            use_entities=cfg.use_entities, entity_dim=cfg.entity_dim, d_model=d_model,
                            heads=cfg.heads, ffn_dim=cfg.ffn_dim, attn_dropout=cfg.attn_dropout,
                            gru_hidden=cfg.gru_hidden, dropout=cfg.dropout)
        alpha = [cfg.focal_alpha] * cfg.num_classes + [1.0 - cfg.focal_alpha]
        self.register_buffer("focal_alpha", torch.tensor(alpha), persistent=False)

    def forward(self, x: torch.Tensor, entities: torch.Tensor | None = None,
                entity_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """x (B, T, D); entities (B, T, N, entity_dim) and entity_mask (B, T, N), both optional."""
        return {"logits": self.head(x, entities, entity_mask)}              # (B, T, K + 1)

    @staticmethod
    def frame_targets(events: torch.Tensor) -> torch.Tensor:
        """events (B, T, K) -> (B, T, K + 1) distribution: the frame's classes (shared equally), else background."""
        y = events.ne(0).to(torch.float32)                                     # (B, T, K)
        background = (y.sum(dim=-1, keepdim=True) == 0).to(torch.float32)      # (B, T, 1)
        y = torch.cat([y, background], dim=-1)
        return y / y.sum(dim=-1, keepdim=True)

    def loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Softmax focal loss per frame, against batch["target"] when an augmentation mixed the targets
        (ugl-e2e's mixup), else the targets of batch["events"]. Shared by ugl-e2e."""
        logits = outputs["logits"]                                             # (B, T, K + 1)
        y = batch["target"] if "target" in batch else UGL.frame_targets(batch["events"])
        fl = focal_loss(logits, y.to(logits.device), gamma=self.cfg.focal_gamma, alpha=self.focal_alpha,
                        reduction="mean")
        return {"loss": fl, "focal": fl}

    def frame_scores(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"scores": torch.softmax(outputs["logits"], dim=-1)[..., : self.num_classes]}  # (B, T, K)
