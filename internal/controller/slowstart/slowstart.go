// Package slowstart makes a burst of writes the way kube-controller-manager
// does: in concurrent batches of 1, 2, 4, ... that stop after the first
// batch in which one fails, so that a create failing for every pod (a
// quota, a bad template) costs few requests and events.
package slowstart

import "sync"

// Run calls fn(i) for each i in [0, count), in concurrent batches that
// start at initial and double while whole batches succeed. It returns how
// many calls it made (the rest were never tried) and the first error of
// the batch that stopped it.
func Run(count, initial int, fn func(i int) error) (tried int, err error) {
	for batch := min(count, max(initial, 1)); batch > 0; batch = min(2*batch, count-tried) {
		errs := make(chan error, batch)
		var wg sync.WaitGroup
		for i := tried; i < tried+batch; i++ {
			wg.Go(func() {
				if err := fn(i); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		tried += batch
		if len(errs) > 0 {
			return tried, <-errs
		}
	}
	return tried, nil
}
