-- Hand-written baseline: the indicator mart (marts.area_indicators) straight from the raw deliveries,
-- in one DuckDB script, without orchestration or validation.
--
-- Variables (set before running, e.g. by hand_written.py or in the DuckDB CLI):
--   SET VARIABLE landing = '/path/to/landing';           -- folder with the delivered files
--   SET VARIABLE seeds   = '/path/to/dbt_project/seeds'; -- reference/*.csv and catalogue/indicator_catalogue.csv
--   SET VARIABLE cycles  = [2007, 2012, 2018, 2025];      -- report cycles (reference date 31.12.)
--   SET VARIABLE out     = '/path/to/area_indicators.parquet';

copy (
with
-- Reference geography: Unterbezirk -> statistischer Bezirk -> Stadtbezirk, Unterbezirk -> Sozialraum.
unterbezirke as (
    select ub.unterbezirk_id, ub.bezirk_id, ub.sozialraum_id, bz.stadtbezirk_id
    from read_csv(getvariable('seeds') || '/reference/unterbezirke.csv', header = true, auto_detect = false,
                  columns = {'unterbezirk_id': 'VARCHAR', 'unterbezirk_name': 'VARCHAR', 'bezirk_id': 'VARCHAR',
                             'sozialraum_id': 'VARCHAR', 'name_status': 'VARCHAR', 'mapping_status': 'VARCHAR'}) as ub
    join read_csv(getvariable('seeds') || '/reference/statistische_bezirke.csv', header = true, auto_detect = false,
                  columns = {'bezirk_id': 'VARCHAR', 'bezirk_name': 'VARCHAR', 'stadtbezirk_id': 'VARCHAR',
                             'code_status': 'VARCHAR', 'name_status': 'VARCHAR'}) as bz using (bezirk_id)
    join read_csv(getvariable('seeds') || '/reference/stadtbezirke.csv', header = true, auto_detect = false,
                  columns = {'stadtbezirk_id': 'VARCHAR', 'stadtbezirk_name': 'VARCHAR', 'code_status': 'VARCHAR',
                             'name_status': 'VARCHAR'}) as sb using (stadtbezirk_id)
    join read_csv(getvariable('seeds') || '/reference/sozialraeume.csv', header = true, auto_detect = false,
                  columns = {'sozialraum_id': 'VARCHAR', 'sozialraum_name': 'VARCHAR', 'name_status': 'VARCHAR',
                             'composition_status': 'VARCHAR'}) as sr using (sozialraum_id)
),

catalogue as (
    -- by the header, every column as text: the catalogue's columns are declared in the catalogue alone
    select indicator_id, numerator_measure, denominator_measure, cast(scale as integer) as scale
    from read_csv(getvariable('seeds') || '/catalogue/indicator_catalogue.csv', header = true, delim = ',',
                  quote = '"', escape = '"', all_varchar = true)
),

cycles as (
    select unnest(getvariable('cycles'))::integer as report_cycle
),

-- The delivered file of every source and cycle, as read_csv/read_parquet name it in their filename column.
deliveries as (
    select
        report_cycle,
        make_date(report_cycle, 12, 31) as reference_date,
        getvariable('landing') || '/bevoelkerung_' || report_cycle || '-12-31.csv' as register_file,
        getvariable('landing') || '/sgb2_' || report_cycle || '-12-31.parquet' as sgb2_file,
        getvariable('landing') || '/sgb12_' || report_cycle || '-12-31.csv' as sgb12_file,
        getvariable('landing') || '/asylblg_' || report_cycle || '-12-31.csv' as asylblg_file
    from cycles
),

-- Population register (cp1252, DD.MM.YYYY): residents with main residence, age at 31.12. of the cycle.
residents as (
    select
        d.report_cycle,
        unterbezirk_id,
        person_key,
        household_key,
        move_in_date,
        move_in_date = birth_date as moved_in_at_birth,
        date_diff('year', birth_date, d.reference_date)  -- completed years (macro age_at)
            - case when month(d.reference_date) * 100 + day(d.reference_date)
                        < month(birth_date) * 100 + day(birth_date) then 1 else 0 end as age_years,
        nationality_group <> 'deutsch' as is_non_german,
        -- migration background: the three criteria of config/dortmund/city.yml (non-German, a second
        -- nationality other than German, born abroad)
        nationality_group <> 'deutsch' or coalesce(second_nationality_group <> 'deutsch', false)
            or birth_country = 'Ausland' as has_migration_background
    from read_csv(list_transform(getvariable('cycles'),
                                 lambda c: getvariable('landing') || '/bevoelkerung_' || c || '-12-31.csv'),
                  delim = ';', header = true, auto_detect = false, encoding = 'latin-1', dateformat = '%d.%m.%Y',
                  filename = true,
                  columns = {'person_key': 'VARCHAR', 'birth_date': 'DATE', 'sex': 'VARCHAR',
                             'nationality_group': 'VARCHAR', 'residence_type': 'VARCHAR', 'move_in_date': 'DATE',
                             'unterbezirk_id': 'VARCHAR', 'street_key': 'VARCHAR', 'house_number': 'VARCHAR',
                             'second_nationality_group': 'VARCHAR', 'birth_country': 'VARCHAR',
                             'household_key': 'VARCHAR'}) as r
    join deliveries as d on d.register_file = r.filename
    where residence_type = 'H'
),

-- Households of main residents, each in its oldest member's Unterbezirk.
household_counts as (
    select
        report_cycle,
        unterbezirk_id,
        count(*) as households,
        count(*) filter (where children > 0) as households_with_children,
        count(*) filter (where children > 0 and adults = 1) as households_single_parent
    from (
        select report_cycle, household_key, arg_max(unterbezirk_id, age_years) as unterbezirk_id,
               count(*) filter (where age_years >= 18) as adults, count(*) filter (where age_years < 18) as children
        from residents
        group by all
    )
    group by all
),

-- Moves since the previous cycle processed (none for the first): by person key and Unterbezirk.
previous_cycles as (
    select report_cycle, lag(report_cycle) over (order by report_cycle) as previous_cycle from cycles
),

moves_in as (
    select r.report_cycle, r.unterbezirk_id, count(*) as moves_in
    from residents as r
    join previous_cycles as p on p.report_cycle = r.report_cycle
    where r.move_in_date > make_date(p.previous_cycle, 12, 31) and not r.moved_in_at_birth
        and not exists (select 1 from residents as e where e.report_cycle = p.previous_cycle
                        and e.person_key = r.person_key and e.unterbezirk_id = r.unterbezirk_id)
    group by all
),

moves_out as (
    select p.report_cycle, e.unterbezirk_id, count(*) as moves_out
    from residents as e
    join previous_cycles as p on p.previous_cycle = e.report_cycle
    where not exists (select 1 from residents as r where r.report_cycle = p.report_cycle
                      and r.person_key = e.person_key and r.unterbezirk_id = e.unterbezirk_id)
    group by all
),

resident_counts as (
    select
        report_cycle,
        unterbezirk_id,
        count(*) as residents,
        count(*) filter (where age_years < 15) as residents_age_0_14,
        count(*) filter (where age_years between 15 and 64) as residents_age_15_64,
        count(*) filter (where age_years >= 65) as residents_age_65_plus,
        count(*) filter (where age_years < 18) as residents_age_0_17,
        count(*) filter (where age_years < 65) as residents_below_sgb2_age_bound,  -- sgb2_age_bound = 65
        count(*) filter (where is_non_german) as residents_non_german,
        count(*) filter (where has_migration_background) as residents_migration_background
    from residents
    group by all
),

-- Transfer recipients of the three schemes; a person in several is counted once: SGB II > SGB XII > AsylbLG.
recipients as (
    select
        d.report_cycle,
        "Personen_ID" as person_key, "Unterbezirk" as unterbezirk_id, cast("Alter" as integer) as age_years,
        'sgb2' as scheme, 1 as priority
    from read_parquet(list_transform(getvariable('cycles'),
                                     lambda c: getvariable('landing') || '/sgb2_' || c || '-12-31.parquet'),
                      filename = true) as r
    join deliveries as d on d.sgb2_file = r.filename
    union all
    select
        d.report_cycle,
        person_key, unterbezirk_id,
        date_diff('year', birth_date, d.reference_date)  -- completed years (macro age_at)
            - case when month(d.reference_date) * 100 + day(d.reference_date)
                        < month(birth_date) * 100 + day(birth_date) then 1 else 0 end,
        case benefit_kind when 'HLU' then 'sgb12_hlu' else 'sgb12_gsi' end, 2
    from read_csv(list_transform(getvariable('cycles'),
                                 lambda c: getvariable('landing') || '/sgb12_' || c || '-12-31.csv'),
                  delim = ';', header = true, auto_detect = false, dateformat = '%d.%m.%Y', filename = true,
                  columns = {'person_key': 'VARCHAR', 'benefit_kind': 'VARCHAR', 'birth_date': 'DATE',
                             'unterbezirk_id': 'VARCHAR'}) as r
    join deliveries as d on d.sgb12_file = r.filename
    union all
    select
        d.report_cycle,
        person_key, unterbezirk_id,
        date_diff('year', birth_date, d.reference_date)  -- completed years (macro age_at)
            - case when month(d.reference_date) * 100 + day(d.reference_date)
                        < month(birth_date) * 100 + day(birth_date) then 1 else 0 end,
        'asylblg', 3
    from read_csv(list_transform(getvariable('cycles'),
                                 lambda c: getvariable('landing') || '/asylblg_' || c || '-12-31.csv'),
                  delim = ';', header = true, auto_detect = false, dateformat = '%d.%m.%Y', filename = true,
                  columns = {'person_key': 'VARCHAR', 'birth_date': 'DATE', 'sex': 'VARCHAR',
                             'unterbezirk_id': 'VARCHAR'}) as r
    join deliveries as d on d.asylblg_file = r.filename
),

recipients_once as (
    select * from recipients
    qualify row_number() over (partition by report_cycle, person_key order by priority) = 1
),

recipient_counts as (
    select
        report_cycle,
        unterbezirk_id,
        count(*) as recipients_transfer,
        count(*) filter (where age_years < 15) as recipients_transfer_age_0_14,
        count(*) filter (where age_years >= 65) as recipients_transfer_age_65_plus,
        count(*) filter (where scheme = 'sgb2') as recipients_sgb2,
        count(*) filter (where scheme = 'sgb12_hlu') as recipients_sgb12_hlu,
        count(*) filter (where scheme = 'sgb12_gsi') as recipients_sgb12_gsi,
        count(*) filter (where scheme = 'asylblg') as recipients_asylblg
    from recipients_once
    group by all
),

-- Every Unterbezirk in every cycle, zero where nobody lives or draws benefits.
unterbezirk_counts as (
    select
        c.report_cycle, u.unterbezirk_id, u.bezirk_id, u.sozialraum_id, u.stadtbezirk_id,
        coalesce(r.residents, 0) as residents,
        coalesce(r.residents_age_0_14, 0) as residents_age_0_14,
        coalesce(r.residents_age_15_64, 0) as residents_age_15_64,
        coalesce(r.residents_age_65_plus, 0) as residents_age_65_plus,
        coalesce(r.residents_age_0_17, 0) as residents_age_0_17,
        coalesce(r.residents_below_sgb2_age_bound, 0) as residents_below_sgb2_age_bound,
        coalesce(r.residents_non_german, 0) as residents_non_german,
        coalesce(r.residents_migration_background, 0) as residents_migration_background,
        coalesce(h.households, 0) as households,
        coalesce(h.households_with_children, 0) as households_with_children,
        coalesce(h.households_single_parent, 0) as households_single_parent,
        case when p.previous_cycle is not null then coalesce(mi.moves_in, 0) end as moves_in,
        case when p.previous_cycle is not null then coalesce(mo.moves_out, 0) end as moves_out,
        coalesce(t.recipients_transfer, 0) as recipients_transfer,
        coalesce(t.recipients_transfer_age_0_14, 0) as recipients_transfer_age_0_14,
        coalesce(t.recipients_transfer_age_65_plus, 0) as recipients_transfer_age_65_plus,
        coalesce(t.recipients_sgb2, 0) as recipients_sgb2,
        coalesce(t.recipients_sgb12_hlu, 0) as recipients_sgb12_hlu,
        coalesce(t.recipients_sgb12_gsi, 0) as recipients_sgb12_gsi,
        coalesce(t.recipients_asylblg, 0) as recipients_asylblg
    from cycles as c
    cross join unterbezirke as u
    left join resident_counts as r on r.report_cycle = c.report_cycle and r.unterbezirk_id = u.unterbezirk_id
    left join recipient_counts as t on t.report_cycle = c.report_cycle and t.unterbezirk_id = u.unterbezirk_id
    left join household_counts as h on h.report_cycle = c.report_cycle and h.unterbezirk_id = u.unterbezirk_id
    join previous_cycles as p on p.report_cycle = c.report_cycle
    left join moves_in as mi on mi.report_cycle = c.report_cycle and mi.unterbezirk_id = u.unterbezirk_id
    left join moves_out as mo on mo.report_cycle = c.report_cycle and mo.unterbezirk_id = u.unterbezirk_id
),

-- Long form, added up to every level (never averaged).
long as (
    unpivot unterbezirk_counts
    on columns(* exclude (report_cycle, unterbezirk_id, bezirk_id, sozialraum_id, stadtbezirk_id))
    into name measure_id value measure_value
),

by_level as (
    select
        report_cycle,
        case
            when grouping(unterbezirk_id) = 0 then 'unterbezirk'
            when grouping(bezirk_id) = 0 then 'statistischer_bezirk'
            when grouping(sozialraum_id) = 0 then 'sozialraum'
            when grouping(stadtbezirk_id) = 0 then 'stadtbezirk'
            else 'city'
        end as area_level,
        coalesce(unterbezirk_id, bezirk_id, sozialraum_id, stadtbezirk_id, 'city') as area_id,
        measure_id,
        cast(sum(measure_value) as bigint) as measure_value
    from long
    group by grouping sets (
        (report_cycle, measure_id, unterbezirk_id),
        (report_cycle, measure_id, bezirk_id),
        (report_cycle, measure_id, sozialraum_id),
        (report_cycle, measure_id, stadtbezirk_id),
        (report_cycle, measure_id)
    )
),

-- Residents of the previous cycle among the cycles processed (none for the first).
previous as (
    select
        report_cycle, area_level, area_id, measure_value as residents,
        lag(measure_value) over (partition by area_level, area_id order by report_cycle) as residents_previous_cycle
    from by_level
    where measure_id = 'residents'
),

measures as (
    select * from by_level
    union all
    select report_cycle, area_level, area_id, 'residents_previous_cycle', residents_previous_cycle
    from previous where residents_previous_cycle is not null
    union all
    select report_cycle, area_level, area_id, 'residents_change', residents - residents_previous_cycle
    from previous where residents_previous_cycle is not null
),

computed as (
    select
        n.report_cycle,
        n.area_level,
        n.area_id,
        k.indicator_id,
        cast(n.measure_value as bigint) as numerator,
        cast(d.measure_value as bigint) as denominator,
        case
            when k.denominator_measure is null then cast(n.measure_value as double)
            when d.measure_value > 0 then k.scale * n.measure_value / d.measure_value
        end as value
    from catalogue as k
    join measures as n on n.measure_id = k.numerator_measure
    left join measures as d
        on d.measure_id = k.denominator_measure
        and d.report_cycle = n.report_cycle and d.area_level = n.area_level and d.area_id = n.area_id
    where k.denominator_measure is null or d.measure_value is not null
)

select
    cast(c.report_cycle as integer) as report_cycle,
    c.area_level,
    c.area_id,
    c.indicator_id,
    c.numerator,
    c.denominator,
    cast(c.value as double) as value,
    cast(city.value as double) as city_value
from computed as c
left join computed as city
    on city.area_level = 'city' and city.report_cycle = c.report_cycle and city.indicator_id = c.indicator_id
order by report_cycle, area_level, area_id, indicator_id
) to (getvariable('out')) (format parquet);
