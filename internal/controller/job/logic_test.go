package job

import (
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestIntervalsReadMergeAndPrintAsKubernetesDoes(t *testing.T) {
	for _, tc := range []struct {
		in          string
		completions int
		add         []int
		want        string
		total       int
	}{
		{"", 5, nil, "", 0},
		{"", 5, []int{0, 1, 2}, "0-2", 3},
		{"0", 5, []int{1}, "0,1", 2},
		{"1,3-5", 10, []int{2}, "1-5", 5},
		{"1,3-5", 10, []int{7, 8}, "1,3-5,7,8", 6},
		{"0-9", 5, nil, "0-4", 5},     // past completions
		{"7,2,x", 10, nil, "7", 1},    // unsorted and bad parts are dropped
		{"3-1", 10, []int{0}, "0", 1}, // a backwards range is dropped
	} {
		got := parseIndexes(tc.in, tc.completions).withIndexes(tc.add)
		if got.String() != tc.want || got.total() != tc.total {
			t.Errorf("%q + %v = %q (total %d), want %q (%d)", tc.in, tc.add, got.String(), got.total(), tc.want, tc.total)
		}
	}
	ivs := parseIndexes("1,3-5,9", 10)
	for ix, want := range map[int]bool{0: false, 1: true, 2: false, 3: true, 5: true, 6: false, 9: true, 10: false} {
		if ivs.has(ix) != want {
			t.Errorf("has(%d) = %v", ix, !want)
		}
	}
}

func TestPendingIndexesSkipSucceededAndRunningOnes(t *testing.T) {
	job := newJob("p", ptr.To(int32(6)), ptr.To(int32(6)))
	job.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	withIndex := func(ix string, deleting bool) *corev1.Pod {
		p := jobPod(job, "p-"+ix, corev1.PodRunning)
		p.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: ix}
		if deleting {
			p.DeletionTimestamp = &metav1.Time{Time: t0}
		}
		return p
	}
	running, terminating := withIndex("2", false), withIndex("4", true)
	s := &syncState{job: job, pods: []*corev1.Pod{running, terminating}, active: []*corev1.Pod{running},
		succeededIndexes: parseIndexes("0", 6)}
	if got := pendingIndexes(s, 3, 6); !slices.Equal(got, []int{1, 3, 4}) {
		t.Errorf("pending = %v, want 1, 3, 4", got)
	}
	// Replacing only failed pods, a terminating pod's index waits.
	job.Spec.PodReplacementPolicy = ptr.To(batchv1.Failed)
	if got := pendingIndexes(s, 3, 6); !slices.Equal(got, []int{1, 3, 5}) {
		t.Errorf("pending = %v, want 1, 3, 5", got)
	}
}

func TestBackoffDoublesFromTenSecondsUpToTenMinutes(t *testing.T) {
	last := t0
	for _, tc := range []struct {
		failures int32
		elapsed  time.Duration
		want     time.Duration
	}{
		{0, 0, 0},
		{1, 0, 10 * time.Second},
		{1, 4 * time.Second, 6 * time.Second},
		{1, 11 * time.Second, 0},
		{2, 0, 20 * time.Second},
		{3, 0, 40 * time.Second},
		{6, 0, 320 * time.Second},
		{7, 0, 10 * time.Minute}, // 640s, capped
		{20, 0, 10 * time.Minute},
	} {
		r := backoffRecord{failuresAfterLastSuccess: tc.failures, lastFailureTime: &last}
		if got := r.remaining(t0.Add(tc.elapsed)); got != tc.want {
			t.Errorf("%d failures, %v since: wait %v, want %v", tc.failures, tc.elapsed, got, tc.want)
		}
	}
}

func TestBackoffRecordRestartsAfterASuccess(t *testing.T) {
	job := newJob("b", ptr.To(int32(3)), ptr.To(int32(1)))
	at := func(name string, phase corev1.PodPhase, d time.Duration) *corev1.Pod {
		p := jobPod(job, name, phase)
		p.Status.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.NewTime(t0.Add(d))
		return p
	}
	s := newBackoffStore()
	r := s.next("k", nil, []*corev1.Pod{at("f1", corev1.PodFailed, 0), at("f2", corev1.PodFailed, time.Second)})
	if r.failuresAfterLastSuccess != 2 || !r.lastFailureTime.Equal(t0.Add(time.Second)) {
		t.Fatalf("record %+v, want 2 failures, the last at t0+1s", r)
	}
	s.update(r)
	// A success, then one failure after it: one failure counts.
	r = s.next("k", []*corev1.Pod{at("ok", corev1.PodSucceeded, 2*time.Second)},
		[]*corev1.Pod{at("f3", corev1.PodFailed, time.Second/2), at("f4", corev1.PodFailed, 3*time.Second)})
	if r.failuresAfterLastSuccess != 1 || !r.lastFailureTime.Equal(t0.Add(3*time.Second)) {
		t.Errorf("record %+v, want 1 failure at t0+3s", r)
	}
}

func TestPodFailurePolicyRulesMatchInOrder(t *testing.T) {
	failed := func(code int32) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"}, Status: corev1.PodStatus{Phase: corev1.PodFailed,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}}}}
	}
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{3}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 3}}},
	}}
	if msg, counts, _ := matchPodFailurePolicy(policy, failed(3)); msg != nil || counts {
		t.Errorf("exit 3: msg %v, counts %v; want ignored", msg, counts)
	}
	if msg, counts, _ := matchPodFailurePolicy(policy, failed(1)); msg != nil || !counts {
		t.Errorf("exit 1: msg %v, counts %v; want counted, no match", msg, counts)
	}
	msg, counts, action := matchPodFailurePolicy(policy, failed(42))
	if msg == nil || !counts || *action != batchv1.PodFailurePolicyActionFailJob ||
		*msg != "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1" {
		t.Errorf("exit 42: msg %v, counts %v, action %v", msg, counts, action)
	}
}

func TestSuccessPolicyMatchesIndexesOrCount(t *testing.T) {
	succeeded := parseIndexes("0-2,5", 10)
	for _, tc := range []struct {
		rule batchv1.SuccessPolicyRule
		want bool
	}{
		{batchv1.SuccessPolicyRule{SucceededIndexes: ptr.To("0-2")}, true},
		{batchv1.SuccessPolicyRule{SucceededIndexes: ptr.To("0-3")}, false},
		{batchv1.SuccessPolicyRule{SucceededIndexes: ptr.To("2-6"), SucceededCount: ptr.To(int32(2))}, true},
		{batchv1.SuccessPolicyRule{SucceededCount: ptr.To(int32(4))}, true},
		{batchv1.SuccessPolicyRule{SucceededCount: ptr.To(int32(5))}, false},
	} {
		_, got := matchSuccessPolicy(&batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{tc.rule}}, 10, succeeded)
		if got != tc.want {
			t.Errorf("rule %+v: %v, want %v", tc.rule, got, tc.want)
		}
	}
}

func TestPodsForRemovalPicksThoseFurthestFromDone(t *testing.T) {
	job := newJob("r", ptr.To(int32(3)), ptr.To(int32(3)))
	mk := func(name, node string, phase corev1.PodPhase, ready bool) *corev1.Pod {
		p := jobPod(job, name, phase)
		p.Spec.NodeName = node
		if ready {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
		}
		return p
	}
	pods := []*corev1.Pod{mk("ready", "n", corev1.PodRunning, true), mk("running", "n", corev1.PodRunning, false),
		mk("pending", "n", corev1.PodPending, false), mk("unscheduled", "", corev1.PodPending, false)}
	var names []string
	for _, p := range podsForRemoval(job, pods, 3) {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"unscheduled", "pending", "running"}) {
		t.Errorf("removal order %v", names)
	}
}
