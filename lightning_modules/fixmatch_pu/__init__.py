"""Document 004 (FixMatch with positive-unlabeled learning for cryo-EM particle picking): simulated
micrographs and the user's MRC/STAR/Topaz files (`data`), the patch classifiers, the PU objectives
(nnPU, uPU, Topaz's GE-binomial, PN), FixMatch's views and the LightningModule, and sliding-window
particle picking."""

from lightning_modules.fixmatch_pu.backbones import BackboneConfig, PatchClassifier, SmallCNN, SmallResNet, build_backbone
from lightning_modules.fixmatch_pu.config import BACKBONES, OBJECTIVES, FixMatchPUConfig
from lightning_modules.fixmatch_pu.module import USAGE_THRESHOLDS, FixMatchPUModule, rampup_weight
from lightning_modules.fixmatch_pu.pu_risk import Risk, ge_binomial_risk, pn_risk, pu_risk

__all__ = ["SmallCNN", "SmallResNet", "BackboneConfig", "PatchClassifier", "build_backbone", "BACKBONES", "OBJECTIVES", "FixMatchPUConfig",
           "USAGE_THRESHOLDS", "FixMatchPUModule", "rampup_weight", "Risk", "ge_binomial_risk", "pn_risk", "pu_risk"]
