"""The StreetHazards class table and on-disk label values the generated dataset uses.

Hendrycks et al., "Scaling Out-of-Distribution Detection for Real-World Settings" (ICML 2022): annotation
PNGs hold ``class index + 1`` (1 = unlabeled ... 13 = traffic sign, 14 = anomaly), as in the official
``streethazards_train.tar`` / ``streethazards_test.tar`` archives.
"""
#: Class names by on-disk value - 1; value 14 (index 13) is the anomaly.
CLASS_NAMES = ('unlabeled', 'building', 'fence', 'other', 'pedestrian', 'pole', 'road line', 'road', 'sidewalk',
               'vegetation', 'car', 'wall', 'traffic sign', 'anomaly')

# On-disk label values (class index + 1).
UNLABELED, BUILDING, FENCE, OTHER, PEDESTRIAN, POLE, ROAD_LINE, ROAD, SIDEWALK, VEGETATION, CAR, \
    WALL, TRAFFIC_SIGN, ANOMALY = range(1, 15)
#: Label value of the anomaly class in the annotation files.
ANOMALY_LABEL = ANOMALY
