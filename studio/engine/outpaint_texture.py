"""Outpainting with Studio's learned fill: the network's colours, the photo's own texture.

Extending a photo by a wide margin, studio-inpaint on its own returns flat colour that smears
into ghost columns far from the border (its fill is the mean of what could be there), and
PatchMatch run tile by tile sees only a narrow strip of the photo per tile and settles on its
flattest patches (flat blocks). What worked, looked at on four extensions (a café table and a
penguin on grass by 256 px to the right, a cliff dwelling and the sample to 16:9):

1. the network fills the new area once, on a copy at most :data:`NETWORK_SIDE` px, for the
   colours and large shapes;
2. PatchMatch starts from that fill and searches the **whole** padded picture at a working scale
   of :data:`SEARCH_SIDE` px, unguided (guided by the network's low-pass it chose the flattest
   patches again);
3. real full-resolution pixels are copied through its nearest-neighbour field (no vote, no
   band split), so the wood grain or the grass comes out as crisp as in the photo;
4. the copy's shade is matched to the photo's along the old border, fading out over
   :data:`SEAM_REACH` px (:mod:`studio.models.seam_match`): the copied wood came from lit and
   shaded places and left a visible line where the photo ended (session of 2026-12-05, the
   same four extensions; the line is gone on the table, fainter on the cliff and the sample;
   a change in blur between the penguin's grass and its copy still shows).

Measured here (2-core CPU): 0.3-0.7 s for the network and 0.3-0.4 s for the rest on 683-856 px
wide results; a full-resolution search looked softer and took 3-8 s.
"""

from __future__ import annotations

import numpy as np

from studio.engine.inpaint_choice import Filler, network_fill_at
from studio.models.hybrid_inpaint import hybrid_inpaint
from studio.models.seam_match import REACH

#: the network runs on a copy at most this many px per side (its fill is smooth anyway)
NETWORK_SIDE = 512
#: PatchMatch's working scale: about 7 px patches of a 256 px copy, large enough to carry grain
SEARCH_SIDE = 256
#: px into the new area over which the copy's shade is brought to the photo's at the border
SEAM_REACH = REACH


def texture_outpaint_filler(network: Filler, seed: int = 0) -> Filler:
    """A filler for outpaint holes: the network's fill, then texture copied through an
    unguided PatchMatch over the whole picture. Known pixels come back exact."""

    def fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
        coarse = network_fill_at(network, image, hole, NETWORK_SIDE)
        if (hole > 0.5).all():  # nothing to copy texture from
            return coarse
        return hybrid_inpaint(
            image,
            hole,
            coarse,
            seed=seed,
            work_side=SEARCH_SIDE,
            band_sigma=0.0,
            vote_share=0.0,
            guide_weight=0.0,
            # the four extensions were looked at with these; object holes now search longer
            iterations=4,
            finest_iterations=2,
            seam_reach=SEAM_REACH,
        )

    return fill
