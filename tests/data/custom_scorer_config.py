# A user's config: a scorer from the user's own module next to anomseg's, no change to anomseg.
custom_imports = dict(imports=['anomseg_plugins', 'custom_scorer'], allow_failed_imports=False)
default_scope = 'mmseg'
scorers = [dict(type='MaxLogit'), dict(type='SecondBestMargin', name='margin')]
