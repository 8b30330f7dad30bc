// The alarms feed actions (alarm, interval, once) are answered by the faas controller itself:
// its built-in alarms provider validates the lifecycle event and keeps the schedule in the
// store. This code runs only where no controller answers them (an engine embedded without
// the provider), and says so.
function main(params) {
    return {
        error: 'the alarms provider is not running in this controller; lifecycleEvent '
            + (params.lifecycleEvent || '(none)') + ' was not handled'
    };
}
