/* platforms/select.h - narrowing an image index to some platforms.
 *
 * Contract: entries are matched with plait_platform_select() (best match per
 * wanted platform); the result keeps the index's mediaType and annotations and
 * lists one entry per wanted platform in the order asked. A platform with no
 * entry is -PLAIT_E_NOT_FOUND naming it and listing what the index has. */
#ifndef PLAIT_PLATFORMS_SELECT_H
#define PLAIT_PLATFORMS_SELECT_H

#include "platform.h"

int plait_index_select_platforms(const struct plait_index *idx, const struct plait_platform *want,
				 size_t n, struct plait_index *out, struct plait_error **err);

#endif
