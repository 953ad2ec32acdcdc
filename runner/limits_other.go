//go:build !unix

package runner

import "errors"

var errNoRlimit = errors.New("open-file limits are not supported on this system")

// RaiseFDLimit is not supported here; it reports an error and no limit.
func RaiseFDLimit() (FDLimit, error) { return FDLimit{}, errNoRlimit }

// CurrentFDLimit is not supported here.
func CurrentFDLimit() (FDLimit, error) { return FDLimit{}, errNoRlimit }

func setRecvBuffer(fd uintptr, n int) error {
	return errors.New("SO_RCVBUF is not supported on this system")
}
