package job

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

const (
	// completionIndexEnv gives an Indexed Job's containers their index.
	completionIndexEnv = "JOB_COMPLETION_INDEX"
	noIndex            = -1
	// maxGeneratedNameLength is how long a generateName prefix may be: the
	// API appends five random characters to make a 63-character name.
	maxGeneratedNameLength = 63 - 5
)

// interval is a run of completion indexes, both ends included.
type interval struct{ first, last int }

// intervals is a sorted list of disjoint, non-adjacent intervals: the form
// of status.completedIndexes ("1,3-5,7").
type intervals []interval

// parseIndexes reads a status.completedIndexes-style list, dropping indexes
// at or past completions and parts it cannot read.
func parseIndexes(s string, completions int) intervals {
	if s == "" {
		return nil
	}
	var out intervals
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		var iv interval
		var err error
		if iv.first, err = strconv.Atoi(lo); err != nil || iv.first < 0 {
			continue
		}
		if iv.first >= completions {
			break
		}
		iv.last = iv.first
		if isRange {
			if iv.last, err = strconv.Atoi(hi); err != nil || iv.last < iv.first {
				continue
			}
			iv.last = min(iv.last, completions-1)
		}
		if n := len(out); n > 0 && out[n-1].last >= iv.first-1 {
			out[n-1].last = max(out[n-1].last, iv.last)
			continue
		}
		out = append(out, iv)
	}
	return out
}

// withIndexes returns the intervals with the sorted indexes added.
func (ivs intervals) withIndexes(sorted []int) intervals {
	add := make(intervals, len(sorted))
	for i, ix := range sorted {
		add[i] = interval{ix, ix}
	}
	return ivs.merge(add)
}

// merge returns the union of two interval lists.
func (ivs intervals) merge(other intervals) intervals {
	var out intervals
	push := func(iv interval) {
		if n := len(out); n > 0 && iv.first <= out[n-1].last+1 {
			out[n-1].last = max(out[n-1].last, iv.last)
			return
		}
		out = append(out, iv)
	}
	i, j := 0, 0
	for i < len(ivs) && j < len(other) {
		if ivs[i].first < other[j].first {
			push(ivs[i])
			i++
		} else {
			push(other[j])
			j++
		}
	}
	for ; i < len(ivs); i++ {
		push(ivs[i])
	}
	for ; j < len(other); j++ {
		push(other[j])
	}
	return out
}

func (ivs intervals) total() int {
	n := 0
	for _, iv := range ivs {
		n += iv.last - iv.first + 1
	}
	return n
}

func (ivs intervals) has(ix int) bool {
	i, found := slices.BinarySearchFunc(ivs, ix, func(iv interval, ix int) int {
		switch {
		case iv.last < ix:
			return -1
		case iv.first > ix:
			return 1
		}
		return 0
	})
	return found && i < len(ivs)
}

// String writes the intervals as Kubernetes does: a pair of neighbours is
// "3,4", a longer run "3-5".
func (ivs intervals) String() string {
	var b strings.Builder
	for _, iv := range ivs {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(iv.first))
		switch {
		case iv.last == iv.first+1:
			b.WriteByte(',')
			b.WriteString(strconv.Itoa(iv.last))
		case iv.last > iv.first:
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(iv.last))
		}
	}
	return b.String()
}

// completionIndex is the pod's index from its annotation, or noIndex.
func completionIndex(pod *corev1.Pod) int {
	v, ok := pod.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return noIndex
	}
	ix, err := strconv.Atoi(v)
	if err != nil || ix < 0 {
		return noIndex
	}
	return ix
}

// validIndex is the pod's index if it is one the Job asks for.
func validIndex(job *batchv1.Job, pod *corev1.Pod) (int, bool) {
	ix := completionIndex(pod)
	return ix, ix != noIndex && ix < int(*job.Spec.Completions)
}

// succeededIndexes returns the indexes status.completedIndexes holds, and
// those plus the indexes of succeeded pods not yet counted.
func succeededIndexes(job *batchv1.Job, pods []*corev1.Pod) (prev, now intervals) {
	prev = parseIndexes(job.Status.CompletedIndexes, int(*job.Spec.Completions))
	found := sets.New[int]()
	for _, p := range pods {
		if ix, ok := validIndex(job, p); ok && p.Status.Phase == corev1.PodSucceeded && hasTrackingFinalizer(p) {
			found.Insert(ix)
		}
	}
	return prev, prev.withIndexes(sets.List(found))
}

// indexesOf returns the pods' indexes.
func indexesOf(pods []*corev1.Pod) sets.Set[int] {
	out := sets.New[int]()
	for _, p := range pods {
		if ix := completionIndex(p); ix != noIndex {
			out.Insert(ix)
		}
	}
	return out
}

// pendingIndexes returns the first count indexes below completions that no
// active pod runs and that have not succeeded; when only failed pods are
// replaced, indexes whose pod is still terminating wait too.
func pendingIndexes(s *syncState, count, completions int) []int {
	if count <= 0 {
		return nil
	}
	busy := s.succeededIndexes.withIndexes(sets.List(indexesOf(s.active)))
	if onlyReplaceFailedPods(s.job) {
		busy = busy.withIndexes(sets.List(indexesOf(terminatingPods(s.pods))))
	}
	out := make([]int, 0, count)
	candidate := 0
	for _, iv := range busy {
		for ; candidate < completions && len(out) < count && candidate < iv.first; candidate++ {
			out = append(out, candidate)
		}
		candidate = max(candidate, iv.last+1)
	}
	for ; candidate < completions && len(out) < count; candidate++ {
		out = append(out, candidate)
	}
	return out
}

// duplicateIndexPods splits active pods into those to remove (no index, an
// index past completions, or the extra pods of an index that runs twice)
// and those to keep.
func duplicateIndexPods(pods []*corev1.Pod, completions int) (rm, keep []*corev1.Pod) {
	byIndex := map[int][]*corev1.Pod{}
	for _, p := range pods {
		ix := completionIndex(p)
		if ix == noIndex || ix >= completions {
			rm = append(rm, p)
			continue
		}
		byIndex[ix] = append(byIndex[ix], p)
	}
	for _, ix := range slices.Sorted(maps.Keys(byIndex)) {
		same := byIndex[ix]
		// Keep the pod furthest along; remove the others.
		slices.SortStableFunc(same, comparePodsForRemoval)
		rm = append(rm, same[:len(same)-1]...)
		keep = append(keep, same[len(same)-1])
	}
	return rm, keep
}

// addCompletionIndexEnv gives every container JOB_COMPLETION_INDEX, read
// from the pod's index label through the downward API.
func addCompletionIndexEnv(tmpl *corev1.PodTemplateSpec) {
	add := func(c *corev1.Container) {
		for _, e := range c.Env {
			if e.Name == completionIndexEnv {
				return
			}
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: completionIndexEnv, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: fmt.Sprintf("metadata.labels['%s']", batchv1.JobCompletionIndexAnnotation)},
		}})
	}
	for i := range tmpl.Spec.InitContainers {
		add(&tmpl.Spec.InitContainers[i])
	}
	for i := range tmpl.Spec.Containers {
		add(&tmpl.Spec.Containers[i])
	}
}

// indexedTemplate is tmpl for the pod of one index: the index annotation
// and label, and the hostname <job>-<index>.
func indexedTemplate(tmpl *corev1.PodTemplateSpec, job *batchv1.Job, ix int) *corev1.PodTemplateSpec {
	t := tmpl.DeepCopy()
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Annotations[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(ix)
	t.Labels[batchv1.JobCompletionIndexAnnotation] = strconv.Itoa(ix)
	t.Spec.Hostname = fmt.Sprintf("%s-%d", job.Name, ix)
	return t
}

// indexedGenerateName is <job>-<index>-, the job name cut short if the
// prefix would leave no room for the random suffix.
func indexedGenerateName(job string, ix int) string {
	suffix := "-" + strconv.Itoa(ix) + "-"
	prefix := job + suffix
	if len(prefix) > maxGeneratedNameLength {
		prefix = prefix[:maxGeneratedNameLength-len(suffix)] + suffix
	}
	return prefix
}
