"""keras.applications' module layout: one module per family (``alexnet``, ``efficientnet``,
``googlenet``, ``lenet``, ``mobilenet``, ``resnet``, ``vgg``, ``vit``), keras.applications' own module
names for the models it has (``vgg16``, ``vgg19``, ``resnet50``, ``mobilenet_v2``), and
``imagenet_utils``. Each holds its constructors with ``preprocess_input`` and ``decode_predictions``::

    from keras_impl.applications.resnet import ResNet18, preprocess_input, decode_predictions
"""
