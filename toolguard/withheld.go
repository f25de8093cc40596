package toolguard

import "errors"

// ErrResultWithheld is returned when the tool ran but its result may not go
// back to the caller: a result rule forbids it, or labelling it failed.
var ErrResultWithheld = errors.New("toolguard: the result was withheld")
