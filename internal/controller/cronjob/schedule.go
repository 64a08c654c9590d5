package cronjob

import (
	"errors"
	"time"

	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// missed says how many schedule times went by unmet.
type missed int

const (
	noneMissed missed = iota
	fewMissed
	// manyMissed: more than 100, which usually means a wrong clock or a
	// controller down for long.
	manyMissed
)

// mostRecentScheduleTime returns the time from which schedule times are
// counted (the last schedule time, or the CronJob's creation; with
// withDeadline, no earlier than startingDeadlineSeconds ago), the most
// recent schedule time after it and not after now (nil if none), and how
// many were missed. A schedule that parses but never fires twice a second
// apart (February 31st, say) is an error.
func mostRecentScheduleTime(cj *batchv1.CronJob, now time.Time, schedule cron.Schedule, withDeadline bool) (time.Time, *time.Time, missed, error) {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if withDeadline && cj.Spec.StartingDeadlineSeconds != nil {
		// Nothing before the deadline will be started anyway.
		if deadline := now.Add(-time.Duration(*cj.Spec.StartingDeadlineSeconds) * time.Second); deadline.After(earliest) {
			earliest = deadline
		}
	}
	t1 := schedule.Next(earliest)
	t2 := schedule.Next(t1)
	if now.Before(t1) {
		return earliest, nil, noneMissed, nil
	}
	if now.Before(t2) {
		return earliest, &t1, noneMissed, nil
	}
	between := int64(t2.Sub(t1).Round(time.Second).Seconds())
	if between < 1 {
		return earliest, nil, noneMissed, errors.New("time difference between two schedules is less than 1 second")
	}
	// Roughly how many times were missed, from the gap between the first
	// two; then walk the schedule from a little before the estimate of the
	// last one, so that irregular schedules (30 6-16/4 * * 1-5) and @every
	// come out right without walking every missed time.
	count := int64(now.Sub(t1).Seconds())/between + 1
	var mostRecent time.Time
	from := t1.Add(time.Duration((count-2)*between) * time.Second)
	for t := schedule.Next(from); !t.After(now); t = schedule.Next(t) {
		mostRecent = t
	}
	m := fewMissed
	if count > 100 {
		m = manyMissed
	}
	if mostRecent.IsZero() {
		return earliest, nil, m, nil
	}
	return earliest, &mostRecent, m, nil
}

// nextScheduleTimeDuration is how long from now until just after the next
// schedule time.
func nextScheduleTimeDuration(cj *batchv1.CronJob, now time.Time, schedule cron.Schedule) *time.Duration {
	earliest, mostRecent, m, err := mostRecentScheduleTime(cj, now, schedule, false)
	switch {
	case err != nil:
		// Requeue anyway, at the next time after now.
		mostRecent = &now
	case mostRecent == nil && m == noneMissed:
		mostRecent = &earliest
	case mostRecent == nil:
		mostRecent = &now
	}
	d := schedule.Next(*mostRecent).Add(nextScheduleDelta).Sub(now)
	return &d
}

// nextScheduleTime returns the schedule time a Job is due for now, or nil.
func (c *Controller) nextScheduleTime(cj *batchv1.CronJob, now time.Time, schedule cron.Schedule) (*time.Time, error) {
	_, mostRecent, m, err := mostRecentScheduleTime(cj, now, schedule, true)
	if mostRecent == nil || mostRecent.After(now) {
		return nil, err
	}
	if m == manyMissed {
		c.recorder.Eventf(cj, corev1.EventTypeWarning, "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
		c.log.Info("too many missed times", "cronjob", cj.Namespace+"/"+cj.Name)
	}
	return mostRecent, err
}
