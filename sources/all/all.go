// Package all links in every source type.
package all

import (
	_ "switchboard/sources/bird"
	_ "switchboard/sources/cisco"
	_ "switchboard/sources/generic"
	_ "switchboard/sources/mobtexting"
	_ "switchboard/sources/telecmi"
)
