"""Document 000 (CPC-SNN for gravitational-wave detection) in Flax NNX: models, losses, jitted steps."""

from .checkpoint import CheckpointError, load_weights, save_weights
from .config import ModelConfig
from .dain import DAIN
from .encoder import CPCEncoder
from .heads import DirectHead
from .infonce import FuturePredictor, infonce_loss
from .lif import LIFClassifier, leaky_integrate, lif_scan, membrane_decay
from .models import AResGWClassifier, CPCClassifier, Model, ModelOutputs, build_model
from .resnet import ResidualBlock, ResNet1D
from .spike_bridge import SpikeBridge, spike
from .steps import make_eval_step, make_predict, make_train_step, predict_in_batches, split_model
from .variants import VARIANTS, Variant, variant_config, variant_learning_rate

__all__ = [
    "AResGWClassifier", "CPCClassifier", "CPCEncoder", "CheckpointError", "DAIN", "DirectHead",
    "FuturePredictor", "LIFClassifier", "Model", "ModelConfig", "ModelOutputs", "ResNet1D",
    "ResidualBlock", "SpikeBridge", "VARIANTS", "Variant", "build_model", "infonce_loss",
    "leaky_integrate", "lif_scan", "load_weights", "make_eval_step", "make_predict", "make_train_step",
    "membrane_decay", "predict_in_batches", "save_weights", "spike", "split_model", "variant_config", "variant_learning_rate",
]
