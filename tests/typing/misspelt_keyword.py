"""The twin of user_code.py: one misspelt keyword (num_clases), which mypy must refuse."""

from keras_impl import VGG16, MobileNetV2, resnet18
from keras_impl.applications.resnet50 import ResNet50, decode_predictions, preprocess_input
from torch_impl import SpecModel, get_model, get_model_weights, list_models, vgg16

model: SpecModel = vgg16(weights="DEFAULT", num_clases=10, progress=False)
backbone = get_model("resnet50", weights=None)
names: list[str] = list_models(include="vgg1*", exclude="*_bn")
default = get_model_weights("resnet50").DEFAULT

base = VGG16(include_top=False, weights="imagenet", input_shape=(224, 224, 3), pooling="avg", name="backbone")
small = resnet18(weights=None, classes=10, zero_init_residual=True)
mobile = MobileNetV2((96, 96, 3), 1.0, False, None)
top = decode_predictions(ResNet50()(preprocess_input(None)), top=3)

pyramid = vgg16(features_only=True, out_indices=(1, 2))  # timm's call; a GraphModule, not a SpecModel
head: SpecModel = vgg16(num_classes=10)
base = VGG16(include_top=False, weight="imagenet")  # Keras' twin: weight for weights
