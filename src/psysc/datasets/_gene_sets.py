"""The bundled scDRS MAGMA gene sets of 75 GWAS traits."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.resources import as_file, files

import pandas as pd

from ..gwas import read_gs

logger = logging.getLogger("psysc")

_GS_FILE = "magma_10kb_top1000_zscore.75_traits.rv1.gs.gz"

#: Short alias -> trait name in the bundled ``.gs`` file.
TRAIT_ALIASES: dict[str, str] = {
    # psychiatric and neurological
    "SCZ": "PASS_Schizophrenia_Pardinas2018",
    "BIP": "PASS_BIP_Mullins2021",
    "MDD": "PASS_MDD_Howard2019",
    "ADHD": "PASS_ADHD_Demontis2018",
    "ASD": "ASD_Grove_et_al",
    "AD": "PASS_Alzheimers_Jansen2019",
    "INSOMNIA": "PASS_Insomnia_Jansen2019",
    "NEUROTICISM": "UKB_460K.mental_NEUROTICISM",
    "INTELLIGENCE": "PASS_Intelligence_SavageJansen2018",
    "EDU": "UKB_460K.cov_EDU_YEARS",
    "SMOKING": "UKB_460K.cov_SMOKING_STATUS",
    "DRINKS": "PASS_DrinksPerWeek_Liu2019",
    "SLEEP_DURATION": "PASS_SleepDuration_Dashti2019",
    "MORNINGNESS": "UKB_460K.other_MORNINGPERSON",
    "RISK_TOLERANCE": "PASS_GeneralRiskTolerance_KarlssonLinner2019",
    "WORRY": "PASS_Worry_Nagel2018",
    # contrast / non-brain
    "HEIGHT": "UKB_460K.body_HEIGHTz",
    "LDL": "UKB_460K.biochemistry_LDLdirect",
    "BMI": "UKB_460K.body_BMIz",
    # immune
    "MS": "PASS_Multiple_sclerosis",
    "IBD": "PASS_IBD_deLange2017",
    "CD": "PASS_CD_deLange2017",
    "UC": "PASS_UC_deLange2017",
    "RA": "PASS_Rheumatoid_Arthritis",
    "SLE": "PASS_Lupus",
    "T1D": "PASS_Type_1_Diabetes",
    "CELIAC": "PASS_Celiac",
    # metabolic / cardiovascular
    "T2D": "PASS_Type_2_Diabetes",
    "CAD": "PASS_Coronary_Artery_Disease",
    "AF": "PASS_AtrialFibrillation_Nielsen2018",
}

#: The five psychiatric disorders psysc reports first (aliases of :data:`TRAIT_ALIASES`).
PSYCHIATRIC_TRAITS = ("SCZ", "BIP", "MDD", "ADHD", "ASD")
#: Contrast traits: a neurodegenerative disease and two non-brain traits.
CONTRAST_TRAITS = ("AD", "HEIGHT", "LDL")


def gwas_gene_sets(traits: str | Iterable[str] | None = None) -> dict[str, pd.Series]:
    """Bundled GWAS gene sets of 75 diseases and traits (scDRS MAGMA top-1,000 genes, z-score weights).

    Each gene set holds the 1,000 genes with the smallest MAGMA gene-level P-value (gene
    window +/-10 kb) for one GWAS, weighted by the MAGMA z-score clipped at 10: the gene sets of
    the scDRS paper (Zhang, Hou et al., Nat Genet 2022; revision 1, 74 traits) plus ASD. Gene
    names are HGNC symbols. Traits with an alias (:data:`TRAIT_ALIASES`) are returned under
    the alias, the others under their name in the file.

    Parameters
    ----------
    traits
        A trait or a list of traits to return, in that order; each is an alias (case-insensitive,
        e.g. ``"scz"``) or a trait name of the file (e.g. ``"PASS_Lupus"``, case-insensitive too). ``None`` returns all
        75 traits in file order.

    Returns
    -------
    dict[str, pandas.Series]
        Trait (alias when defined) -> Series indexed by gene symbol with the MAGMA z-score weights.

    Raises
    ------
    ValueError
        If a requested trait is neither an alias nor a trait of the file; the message lists the
        available names.

    Notes
    -----
    Aliases and the GWAS behind them (first author, year):

    ======================  ==================================================  ==========================
    alias                   trait in the file                                   GWAS
    ======================  ==================================================  ==========================
    ``SCZ``                 PASS_Schizophrenia_Pardinas2018                     Pardinas et al. 2018
    ``BIP``                 PASS_BIP_Mullins2021                                Mullins et al. 2021
    ``MDD``                 PASS_MDD_Howard2019                                 Howard et al. 2019
    ``ADHD``                PASS_ADHD_Demontis2018                              Demontis et al. 2019
    ``ASD``                 ASD_Grove_et_al                                     Grove et al. 2019
    ``AD``                  PASS_Alzheimers_Jansen2019                          Jansen et al. 2019
    ``INSOMNIA``            PASS_Insomnia_Jansen2019                            Jansen et al. 2019
    ``NEUROTICISM``         UKB_460K.mental_NEUROTICISM                         UK Biobank, Loh et al. 2018
    ``INTELLIGENCE``        PASS_Intelligence_SavageJansen2018                  Savage et al. 2018
    ``EDU``                 UKB_460K.cov_EDU_YEARS                              UK Biobank, Loh et al. 2018
    ``SMOKING``             UKB_460K.cov_SMOKING_STATUS                         UK Biobank, Loh et al. 2018
    ``DRINKS``              PASS_DrinksPerWeek_Liu2019                          Liu et al. 2019
    ``SLEEP_DURATION``      PASS_SleepDuration_Dashti2019                       Dashti et al. 2019
    ``MORNINGNESS``         UKB_460K.other_MORNINGPERSON                        UK Biobank, Loh et al. 2018
    ``RISK_TOLERANCE``      PASS_GeneralRiskTolerance_KarlssonLinner2019        Karlsson Linner et al. 2019
    ``WORRY``               PASS_Worry_Nagel2018                                Nagel et al. 2018
    ``HEIGHT``              UKB_460K.body_HEIGHTz                               UK Biobank, Loh et al. 2018
    ``LDL``                 UKB_460K.biochemistry_LDLdirect                     UK Biobank, Loh et al. 2018
    ``BMI``                 UKB_460K.body_BMIz                                  UK Biobank, Loh et al. 2018
    ``MS``                  PASS_Multiple_sclerosis                             IMSGC (Sawcer et al. 2011)
    ``IBD``                 PASS_IBD_deLange2017                                de Lange et al. 2017
    ``CD``                  PASS_CD_deLange2017                                 de Lange et al. 2017
    ``UC``                  PASS_UC_deLange2017                                 de Lange et al. 2017
    ``RA``                  PASS_Rheumatoid_Arthritis                           Okada et al. 2014
    ``SLE``                 PASS_Lupus                                          Bentham et al. 2015
    ``T1D``                 PASS_Type_1_Diabetes                                Bradfield et al. 2011
    ``CELIAC``              PASS_Celiac                                         Dubois et al. 2010
    ``T2D``                 PASS_Type_2_Diabetes                                Morris et al. 2012
    ``CAD``                 PASS_Coronary_Artery_Disease                        CARDIoGRAMplusC4D
    ``AF``                  PASS_AtrialFibrillation_Nielsen2018                 Nielsen et al. 2018
    ======================  ==================================================  ==========================

    "UK Biobank, Loh et al. 2018" are the BOLT-LMM analyses of ~460,000 UK Biobank participants
    (Loh et al., Nat Genet 2018). The ADHD study, named 2018 in the file, was published in 2019
    (Nat Genet 51:63-75).

    Source: ``magma_10kb_top1000_zscore.75_traits.rv1.gs`` of the MIT-licensed repository
    bogdanlab/met-scDRS (commit 59aad5530d212c0e97f42a151bdde760153bd5e9), itself the scDRS
    data release (Zhang, Hou et al. Polygenic enrichment distinguishes disease associations of
    individual cells in single-cell RNA-seq data. Nat Genet 54, 1572-1580, 2022). Bundled
    gzip-compressed and unchanged; see ``psysc/data/README.md``.

    Examples
    --------
    >>> import psysc
    >>> gs = psysc.datasets.gwas_gene_sets(psysc.datasets.PSYCHIATRIC_TRAITS)
    >>> list(gs)
    ['SCZ', 'BIP', 'MDD', 'ADHD', 'ASD']
    >>> len(gs["SCZ"])
    1000
    >>> list(psysc.datasets.gwas_gene_sets(["ldl", "PASS_Lupus"]))
    ['LDL', 'SLE']

    """
    original_to_alias = {orig: alias for alias, orig in TRAIT_ALIASES.items()}
    with as_file(files("psysc.data").joinpath(_GS_FILE)) as path:
        gene_sets = read_gs(path)  # the whole file takes ~50 ms
    if traits is None:
        resolved = [(original_to_alias.get(name, name), name) for name in gene_sets]
    else:
        requested = [traits] if isinstance(traits, str) else list(traits)
        if not requested:
            raise ValueError("traits is empty; pass None for all traits or at least one trait")
        aliases_upper = {alias.upper(): alias for alias in TRAIT_ALIASES}
        names_upper = {name.upper(): name for name in gene_sets}
        resolved = []  # (returned key, trait name in the file)
        unknown = []
        for t in requested:
            if isinstance(t, str) and t.upper() in aliases_upper:
                alias = aliases_upper[t.upper()]
                resolved.append((alias, TRAIT_ALIASES[alias]))
            elif isinstance(t, str) and t.strip().upper() in names_upper:
                name = names_upper[t.strip().upper()]
                resolved.append((original_to_alias.get(name, name), name))
            else:
                unknown.append(t)
        if unknown:
            import difflib

            others = [name for name in gene_sets if name not in original_to_alias]
            keys = [*aliases_upper, *names_upper]
            close = {str(t): [k for k in keys if len(str(t)) >= 3 and str(t).upper() in k][:3]
                     or difflib.get_close_matches(str(t).upper(), keys, n=3, cutoff=0.6) for t in unknown}
            close = {t: list(dict.fromkeys(aliases_upper.get(c) or original_to_alias.get(names_upper[c], names_upper[c])
                                           for c in cs)) for t, cs in close.items() if cs}
            raise ValueError(
                f"unknown trait(s) {unknown}"
                + (f" (close: {'; '.join(f'{t} -> {cs}' for t, cs in close.items())})" if close else "")
                + f"; use an alias (case-insensitive) among {sorted(TRAIT_ALIASES)} or one of the {len(others)} other "
                f"trait names of the file (case-insensitive, e.g. {others[:2]}; list(psysc.datasets.gwas_gene_sets()) "
                "lists every trait)"
            )
        resolved = list(dict.fromkeys(resolved))
    logger.info("loaded %d bundled GWAS gene set(s)", len(resolved))
    return {key: gene_sets[orig].rename(key) for key, orig in resolved}
