"""Document 004 (FixMatch with positive-unlabeled learning for cryo-EM particle picking): groundwork.

So far the data simulator (`lightning_modules.fixmatch_pu.data`); the models and the project follow.
"""
